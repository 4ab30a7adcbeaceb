/**
 * Helpers for writing rdev plugins in JavaScript with ComponentizeJS.
 *
 * A plugin is the ES module `app.js`, whose exported functions are the world's exports in
 * camelCase (`configure`, `selfTest`, `sanitize`...); its imports are ES imports such as
 * `import { parse } from 'rdev:plugin/shell@0.1.0'`. This module is copied into every project
 * next to `app.js` so that the entry file reads as policy, not plumbing:
 *
 *     import { allow, deny, parseConfig } from './rdev-plugin.js';
 *
 *     const DEFAULTS = { refused_programs: ['rm'] };
 *     let config = parseConfig('', DEFAULTS);
 *
 *     export function configure(text) {
 *       config = parseConfig(text, DEFAULTS); // throws configure's `err`
 *     }
 *
 * What is here:
 *
 * - results: {@link allow}, {@link deny}, {@link rewrite} (sanitizer verdicts),
 *   {@link fieldError} (validators), {@link rendered} (formatters), {@link project} (discovery),
 *   and {@link fail}, which ends an export that returns a `result` with its `err`;
 * - configuration: {@link parseConfig}, the JSON rules every rdev plugin follows, and
 *   {@link isObject} for JSON input;
 * - shell scripts (worlds that import `shell`): {@link parseScript} and the {@link Script} it
 *   returns, {@link wordLiteral} and {@link program};
 * - logging into the gateway's log: `log.info('message', { key: value })` and its siblings.
 *
 * WIT values in JavaScript: records are objects with camelCase fields, variants are
 * `{ tag, val }` with the case name as tag, enums are strings, an absent `option` is
 * `undefined`, a `list<u8>` is a `Uint8Array`.
 *
 * An exception that escapes an export traps the component and the gateway then fails closed, so
 * every helper documents what it throws, and none throws on any input besides what it documents.
 */

// Every world imports `log`. `shell` is not imported here: a world without it (e.g.
// request-validator) fails to build when any module imports it, so the shell helpers take the
// entry file's `parse` instead.
import { log as hostLog } from 'rdev:plugin/log@0.1.0';

/**
 * @typedef {{ name: string, value: string }} EnvVar
 * @typedef {{ kind: string, script?: string, args?: string[], prompt?: string, env: EnvVar[] }} Command
 * @typedef {{ project: string, workdir: string, keyId: string, scopes: string[] }} CommandContext
 * @typedef {{ tag: 'allow' } | { tag: 'deny', val: string } | { tag: 'rewrite', val: Command }} Verdict
 * @typedef {{ field: string, message: string }} FieldError
 * @typedef {{ subscription: string, url: string }} WebhookTarget
 * @typedef {{ contentType: string, body: Uint8Array }} Rendered
 * @typedef {{ source: string, name: string, workspace: string, labels: [string, string][] }} InventoryItem
 * @typedef {{ name: string, workspace: string, description?: string }} Project
 */

/**
 * The `shell` interface's records (see `wit/shell.wit`).
 *
 * @typedef {{ start: number, end: number }} Span
 * @typedef {{ tag: 'literal' | 'glob' | 'tilde' | 'parameter' | 'arithmetic', val: string }
 *   | { tag: 'command-substitution' | 'process-substitution', val: number }} WordPart
 * @typedef {{ span: Span, parts: WordPart[] }} Word
 * @typedef {{ fd?: number, operator: string, target: Word, hereDocument?: string, span: Span }} Redirection
 * @typedef {{ name: string, value: Word, span: Span }} Assignment
 * @typedef {{ assignments: Assignment[], words: Word[], redirections: Redirection[], span: Span }} SimpleCommand
 * @typedef {{ scope: number, redirections: Redirection[] }} CompoundCommand
 * @typedef {{ tag: 'simple', val: SimpleCommand } | { tag: 'compound', val: CompoundCommand }} Element
 * @typedef {{ scope: number, negated: boolean, elements: Element[], span: Span }} Pipeline
 * @typedef {{ kind: string, parent?: number, name?: string, words: Word[], span: Span }} Scope
 * @typedef {{ operator: string, span: Span }} ListOperator
 * @typedef {{ scopes: Scope[], pipelines: Pipeline[], operators: ListOperator[] }} RawScript
 * @typedef {(script: string) => RawScript} ParseFunction the `shell` import's `parse`
 */

/** @returns {Verdict} the sanitizer verdict that lets the command through unchanged */
export function allow() {
  return { tag: 'allow' };
}

/**
 * @param {string} reason shown to the client and recorded in the audit log
 * @returns {Verdict} the sanitizer verdict that refuses the command
 */
export function deny(reason) {
  return { tag: 'deny', val: reason };
}

/**
 * @param {Command} command the replacement, which the host judges again
 * @returns {Verdict} the sanitizer verdict that replaces the command
 */
export function rewrite(command) {
  return { tag: 'rewrite', val: command };
}

/**
 * @param {string} field JSON path such as `env.HOME` ("" for the whole request)
 * @param {string} message what is wrong with it
 * @returns {FieldError} one validator objection
 */
export function fieldError(field, message) {
  return { field, message };
}

/**
 * @param {string} contentType the `content-type` header
 * @param {string | Uint8Array} body a string is sent as UTF-8
 * @returns {Rendered} a formatted webhook body
 */
export function rendered(contentType, body) {
  return { contentType, body: typeof body === 'string' ? new TextEncoder().encode(body) : body };
}

/**
 * @param {string} name project name
 * @param {string} workspace must be one the inventory offered
 * @param {string} [description] human description
 * @returns {Project} a discovered project
 */
export function project(name, workspace, description) {
  return { name, workspace, description };
}

/**
 * What {@link fail} throws. ComponentizeJS turns a thrown value with an own `payload` property
 * into the export's `err(payload)`; a thrown `Error` without one traps instead.
 */
export class PluginError extends Error {
  /** @param {string} message the `err` of the export */
  constructor(message) {
    super(message);
    this.name = 'PluginError';
    /** @type {string} */
    this.payload = message;
  }
}

/**
 * Ends the current export with `err(message)` (for exports returning a `result`).
 *
 * @param {string} message
 * @returns {never}
 * @throws {PluginError} always
 */
export function fail(message) {
  throw new PluginError(message);
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>} whether a parsed JSON value is an object (not an
 *   array, not null)
 */
export function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {unknown} value
 * @returns {value is string[]}
 */
function isStringList(value) {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** How a configuration value of each supported kind is checked, and named in refusals. */
const CONFIG_TYPES = [
  { name: 'a list of strings', test: isStringList },
  { name: 'a string', test: (/** @type {unknown} */ value) => typeof value === 'string' },
  { name: 'a boolean', test: (/** @type {unknown} */ value) => typeof value === 'boolean' },
  { name: 'an integer', test: Number.isInteger },
];

/**
 * @param {unknown} value a default
 * @returns {{ name: string, test: (value: unknown) => boolean } | undefined}
 */
function configType(value) {
  return CONFIG_TYPES.find((type) => type.test(value));
}

/**
 * @template {Record<string, unknown>} T
 * @param {T} defaults
 * @returns {T} a copy whose lists are fresh copies
 */
function copyDefaults(defaults) {
  return /** @type {T} */ (
    Object.fromEntries(
      Object.entries(defaults).map(([key, value]) => [key, Array.isArray(value) ? [...value] : value]),
    )
  );
}

/**
 * Parses the JSON handed to `configure`, the same way in every rdev plugin.
 *
 * `defaults` names every key the plugin accepts with its default value, whose type (list of
 * strings, string, boolean or integer) is the type the key must have. "" (or whitespace), `null`
 * and `{}` give the defaults; otherwise the text must be a JSON object whose keys are among the
 * defaults', and the result is the defaults updated with it (lists are fresh copies).
 *
 * @template {Record<string, unknown>} T
 * @param {string} text the configuration, as `configure` receives it
 * @param {T} defaults
 * @returns {T}
 * @throws {PluginError} on a refusal, so that calling it from `configure` refuses the
 *   configuration with that message: `invalid configuration: not JSON: ...`, `...: expected a
 *   JSON object`, ``...: unknown field `KEY` `` or ``...: `KEY` must be a list of strings`` (or
 *   `a string`, `a boolean`, `an integer`)
 * @throws {TypeError} if a default has none of those types (a mistake in the plugin)
 */
export function parseConfig(text, defaults) {
  const types = new Map(
    Object.entries(defaults).map(([key, value]) => {
      const type = configType(value);
      if (type === undefined) {
        throw new TypeError(
          `the default of \`${key}\` must be a list of strings, a string, a boolean or an integer`,
        );
      }
      return [key, type];
    }),
  );
  const config = copyDefaults(defaults);
  if (text.trim() === '') {
    return config;
  }
  let given;
  try {
    given = JSON.parse(text);
  } catch (error) {
    fail(`invalid configuration: not JSON: ${error instanceof Error ? error.message : error}`);
  }
  if (given === null) {
    return config;
  }
  if (!isObject(given)) {
    fail('invalid configuration: expected a JSON object');
  }
  for (const [key, value] of Object.entries(given)) {
    const type = types.get(key);
    if (type === undefined) {
      fail(`invalid configuration: unknown field \`${key}\``);
    }
    if (!type.test(value)) {
      fail(`invalid configuration: \`${key}\` must be ${type.name}`);
    }
    /** @type {Record<string, unknown>} */ (config)[key] = value;
  }
  return config;
}

/** What {@link parseScript} throws when the host's parser refuses a script. */
export class ScriptParseError extends Error {
  /**
   * @param {string} message what is wrong, e.g. "unterminated double quote"
   * @param {Span} span the byte range of the script it is about
   */
  constructor(message, span) {
    super(message);
    this.name = 'ScriptParseError';
    /** @type {Span} */
    this.span = span;
  }
}

/** A parsed shell script: the host's `shell.script` record with walking helpers. */
export class Script {
  /** @param {RawScript} raw the record the `shell` import's `parse` returned */
  constructor(raw) {
    /** The record itself. */
    this.raw = raw;
    /** Every scope; scope 0 is the whole script. */
    this.scopes = raw.scopes;
    /** The pipelines of every scope, in source order. */
    this.pipelines = raw.pipelines;
  }

  /**
   * Every simple command of every pipeline of every scope: subshells, groups, loops,
   * substitutions and function bodies included, in source order. A bare assignment or
   * redirection is a simple command without words.
   *
   * @returns {Generator<SimpleCommand>}
   */
  *simpleCommands() {
    for (const pipeline of this.pipelines) {
      for (const element of pipeline.elements) {
        if (element.tag === 'simple') {
          yield element.val;
        }
      }
    }
  }
}

/**
 * Parses a shell script with the host's parser.
 *
 * @param {ParseFunction} parse the `shell` import's `parse`, imported by the entry file
 *   (`import { parse } from 'rdev:plugin/shell@0.1.0'`) in worlds that have it
 * @param {string} script
 * @returns {Script}
 * @throws {ScriptParseError} when the script does not parse, and nothing else
 */
export function parseScript(parse, script) {
  try {
    return new Script(parse(script));
  } catch (error) {
    // The import throws its `err` (a `parse-error` record) as the `payload` of an Error.
    const payload = /** @type {{ payload?: { message?: unknown, span?: Span } }} */ (error)?.payload;
    const message = typeof payload?.message === 'string' ? payload.message : String(error);
    throw new ScriptParseError(message, payload?.span ?? { start: 0, end: script.length });
  }
}

/**
 * The text of a word if all its parts are literal, else `undefined`: `'rm'` and `r"m"` are
 * `rm`; `$x`, `~`, `*.txt` or `$(...)` make it `undefined`, since their text is only known when
 * the shell runs.
 *
 * @param {Word} word
 * @returns {string | undefined}
 */
export function wordLiteral(word) {
  let text = '';
  for (const part of word.parts) {
    if (part.tag !== 'literal') {
      return undefined;
    }
    text += part.val;
  }
  return text;
}

/**
 * The basename of a simple command's program (`/bin/rm` gives `rm`); `undefined` when the
 * command has no words or its first word is not literal (see {@link wordLiteral}).
 *
 * @param {SimpleCommand} command
 * @returns {string | undefined}
 */
export function program(command) {
  const name = command.words.length === 0 ? undefined : wordLiteral(command.words[0]);
  return name?.slice(name.lastIndexOf('/') + 1);
}

/**
 * @typedef {(message: string, fields?: Record<string, unknown>) => void} LogMethod writes one
 *   record; field values are written with `String()`
 */

/**
 * @param {'trace' | 'debug' | 'info' | 'warn' | 'error'} level
 * @returns {LogMethod}
 */
function logAt(level) {
  return (message, fields = {}) =>
    hostLog(
      level,
      message,
      Object.entries(fields).map(([key, value]) => [key, String(value)]),
    );
}

/**
 * Structured records into the gateway's log, tagged by the host with the plugin's name:
 * `log.info('denied', { program: 'rm' })`. The host bounds sizes and rate and drops the excess.
 */
export const log = Object.freeze({
  /** Very detailed tracing. */
  trace: logAt('trace'),
  /** Debugging detail. */
  debug: logAt('debug'),
  /** Normal operation. */
  info: logAt('info'),
  /** Something looks wrong. */
  warn: logAt('warn'),
  /** Something failed. */
  error: logAt('error'),
});
