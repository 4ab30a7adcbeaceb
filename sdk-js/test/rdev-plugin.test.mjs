// Tests of the SDK shim, run natively: `node --test sdk-js/test/rdev-plugin.test.mjs`.
//
// The shim imports the host's `log` interface, which exists only inside a component. A module
// resolve hook maps that specifier to a fake recording its calls in `globalThis.rdevLogRecords`,
// and the shim is imported only after the hook is registered.

import assert from 'node:assert/strict';
import { register } from 'node:module';
import { beforeEach, describe, test } from 'node:test';

const fakeLog = `data:text/javascript,${encodeURIComponent(
  'export function log(level, message, fields) { globalThis.rdevLogRecords.push({ level, message, fields }); }',
)}`;
const hooks = `
export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'rdev:plugin/log@0.1.0') {
    return { url: ${JSON.stringify(fakeLog)}, shortCircuit: true };
  }
  const resolved = await nextResolve(specifier, context);
  // No package.json marks the shim's directory as ES modules; the shim is one.
  return resolved.url.endsWith('/rdev-plugin.js') ? { ...resolved, format: 'module' } : resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
globalThis.rdevLogRecords = [];

const sdk = await import('../rdev-plugin.js');

/** @param {string} text @returns {object} the word `text`, all literal */
const literal = (text) => ({ span: { start: 0, end: text.length }, parts: [{ tag: 'literal', val: text }] });

/** @param {object[]} words @returns {object} a pipeline element */
const simple = (words) => ({
  tag: 'simple',
  val: { assignments: [], words, redirections: [], span: { start: 0, end: 0 } },
});

/** @param {number} scope @param {object[]} elements @returns {object} a pipeline */
const pipeline = (scope, elements) => ({ scope, negated: false, elements, span: { start: 0, end: 0 } });

/**
 * The error a `result` import throws for `err(payload)`, as ComponentizeJS's bindings make it.
 *
 * @param {unknown} payload
 * @returns {Error}
 */
function componentError(payload) {
  const error = new Error('component error');
  Object.defineProperty(error, 'payload', { value: payload });
  return error;
}

/**
 * @param {() => unknown} run
 * @returns {unknown} the `err` ComponentizeJS makes of what `run` throws (its own `payload`)
 */
function errOf(run) {
  try {
    run();
  } catch (error) {
    assert.ok(Object.hasOwn(error, 'payload'), `thrown without a payload: ${error}`);
    return error.payload;
  }
  assert.fail('nothing was thrown');
}

describe('parseConfig', () => {
  const defaults = { refused_programs: ['rm'], prefix: 'rdev', strict: false, limit: 3 };

  test('empty text, whitespace, null and {} give the defaults', () => {
    for (const text of ['', '  \n', 'null', '{}', ' { } ']) {
      assert.deepEqual(sdk.parseConfig(text, defaults), defaults, text);
    }
  });

  test('given keys replace the defaults, the others stay', () => {
    assert.deepEqual(sdk.parseConfig('{"refused_programs": ["rm", "shred"], "limit": 5}', defaults), {
      refused_programs: ['rm', 'shred'],
      prefix: 'rdev',
      strict: false,
      limit: 5,
    });
  });

  test('the defaults are copied, not shared', () => {
    const config = sdk.parseConfig('', defaults);
    config.refused_programs.push('shred');
    assert.deepEqual(defaults.refused_programs, ['rm']);
  });

  test('an unknown key is refused', () => {
    assert.equal(
      errOf(() => sdk.parseConfig('{"prefix": "ci", "refused": []}', defaults)),
      'invalid configuration: unknown field `refused`',
    );
    assert.equal(
      errOf(() => sdk.parseConfig('{"__proto__": {}}', defaults)),
      'invalid configuration: unknown field `__proto__`',
    );
  });

  test('a value of the wrong type is refused with the expected type', () => {
    const cases = [
      ['{"refused_programs": "rm"}', '`refused_programs` must be a list of strings'],
      ['{"refused_programs": ["rm", 1]}', '`refused_programs` must be a list of strings'],
      ['{"prefix": null}', '`prefix` must be a string'],
      ['{"prefix": ["ci"]}', '`prefix` must be a string'],
      ['{"strict": "yes"}', '`strict` must be a boolean'],
      ['{"limit": 1.5}', '`limit` must be an integer'],
    ];
    for (const [text, message] of cases) {
      assert.equal(errOf(() => sdk.parseConfig(text, defaults)), `invalid configuration: ${message}`, text);
    }
  });

  test('text that is not JSON is refused', () => {
    const err = errOf(() => sdk.parseConfig('{not json', defaults));
    assert.match(err, /^invalid configuration: not JSON: ./);
  });

  test('JSON that is not an object is refused', () => {
    for (const text of ['[]', '"rm"', '3', 'true']) {
      assert.equal(errOf(() => sdk.parseConfig(text, defaults)), 'invalid configuration: expected a JSON object', text);
    }
  });

  test('a default of an unsupported type is a TypeError', () => {
    assert.throws(() => sdk.parseConfig('', { nested: {} }), TypeError);
  });
});

describe('results', () => {
  test('verdicts are WIT variants', () => {
    assert.deepEqual(sdk.allow(), { tag: 'allow' });
    assert.deepEqual(sdk.deny('no'), { tag: 'deny', val: 'no' });
    const command = { kind: 'git', args: ['status'], env: [] };
    assert.deepEqual(sdk.rewrite(command), { tag: 'rewrite', val: command });
  });

  test('field errors, projects and renderings are WIT records', () => {
    assert.deepEqual(sdk.fieldError('env.A', 'no'), { field: 'env.A', message: 'no' });
    assert.deepEqual(sdk.project('web', '/w'), { name: 'web', workspace: '/w', description: undefined });
    assert.deepEqual(sdk.project('web', '/w', 'the site').description, 'the site');
    assert.deepEqual(sdk.rendered('text/plain', 'é'), { contentType: 'text/plain', body: new Uint8Array([0xc3, 0xa9]) });
    const bytes = new Uint8Array([1, 2]);
    assert.equal(sdk.rendered('application/octet-stream', bytes).body, bytes);
  });

  test('fail throws what ComponentizeJS makes the err of the export', () => {
    assert.equal(errOf(() => sdk.fail('the event is not JSON')), 'the event is not JSON');
    assert.throws(() => sdk.fail('x'), sdk.PluginError);
  });

  test('isObject is true of JSON objects only', () => {
    assert.ok(sdk.isObject({}));
    for (const value of [null, [], 'a', 1, true, undefined]) {
      assert.ok(!sdk.isObject(value), String(value));
    }
  });
});

describe('shell scripts', () => {
  test('simpleCommands walks the pipelines of every scope, compound elements skipped', () => {
    // `ls | wc; (cd sub && rm x); echo $(shred y)`, as the host's parser lays it out.
    const raw = {
      scopes: [{ kind: 'script', words: [], span: { start: 0, end: 0 } }],
      pipelines: [
        pipeline(0, [simple([literal('ls')]), simple([literal('wc')])]),
        pipeline(0, [{ tag: 'compound', val: { scope: 1, redirections: [] } }]),
        pipeline(1, [simple([literal('cd'), literal('sub')])]),
        pipeline(1, [simple([literal('rm'), literal('x')])]),
        pipeline(0, [simple([literal('echo'), { span: { start: 0, end: 0 }, parts: [{ tag: 'command-substitution', val: 2 }] }])]),
        pipeline(2, [simple([literal('shred'), literal('y')])]),
      ],
      operators: [],
    };
    const script = sdk.parseScript(() => raw, 'ignored');
    assert.equal(script.raw, raw);
    assert.deepEqual([...script.simpleCommands()].map(sdk.program), ['ls', 'wc', 'cd', 'rm', 'echo', 'shred']);
  });

  test('parseScript hands the script to parse', () => {
    let given;
    sdk.parseScript((text) => {
      given = text;
      return { scopes: [], pipelines: [], operators: [] };
    }, 'ls -l');
    assert.equal(given, 'ls -l');
  });

  test('a parse error is a ScriptParseError with the parser message and span', () => {
    const span = { start: 5, end: 18 };
    const parse = () => {
      throw componentError({ message: 'unterminated double quote', span });
    };
    assert.throws(() => sdk.parseScript(parse, 'echo "unterminated'), (error) => {
      assert.ok(error instanceof sdk.ScriptParseError);
      assert.equal(error.message, 'unterminated double quote');
      assert.deepEqual(error.span, span);
      return true;
    });
  });

  test('wordLiteral joins literal parts and gives nothing for any other part', () => {
    const word = (...parts) => ({ span: { start: 0, end: 0 }, parts });
    assert.equal(sdk.wordLiteral(word({ tag: 'literal', val: 'r' }, { tag: 'literal', val: 'm' })), 'rm');
    assert.equal(sdk.wordLiteral(word()), '');
    for (const part of [
      { tag: 'parameter', val: 'tool' },
      { tag: 'glob', val: '*' },
      { tag: 'tilde', val: '' },
      { tag: 'command-substitution', val: 1 },
    ]) {
      assert.equal(sdk.wordLiteral(word({ tag: 'literal', val: '/bin/' }, part)), undefined, part.tag);
    }
  });

  test('program is the basename of a literal first word', () => {
    const command = (words) => simple(words).val;
    assert.equal(sdk.program(command([literal('/bin/rm'), literal('-f')])), 'rm');
    assert.equal(sdk.program(command([literal('rm')])), 'rm');
    assert.equal(sdk.program(command([])), undefined);
    assert.equal(sdk.program(command([{ span: { start: 0, end: 0 }, parts: [{ tag: 'parameter', val: 'x' }] }])), undefined);
  });
});

describe('log', () => {
  beforeEach(() => {
    globalThis.rdevLogRecords = [];
  });

  test('each method writes at its level, fields as string pairs', () => {
    sdk.log.info('refused a program', { program: 'rm', count: 2 });
    sdk.log.debug('detail');
    sdk.log.warn('odd', { flag: true });
    sdk.log.error('failed', { why: null });
    sdk.log.trace('step');
    assert.deepEqual(globalThis.rdevLogRecords, [
      { level: 'info', message: 'refused a program', fields: [['program', 'rm'], ['count', '2']] },
      { level: 'debug', message: 'detail', fields: [] },
      { level: 'warn', message: 'odd', fields: [['flag', 'true']] },
      { level: 'error', message: 'failed', fields: [['why', 'null']] },
      { level: 'trace', message: 'step', fields: [] },
    ]);
  });
});
