/**
 * {{name}}: a command sanitizer that refuses scripts running a refused program.
 *
 * A `shell` command is parsed with the gateway's shell parser and every simple command is
 * judged, wherever it is nested (subshells, `$(...)`, loops, functions...). A program is matched
 * by the basename of its literal name, so `rm`, `'rm'` and `/bin/rm` are the same program; a
 * program whose name is only known when the script runs (`$tool`) is not matched. Other kinds of
 * commands (argv kinds such as `git`, `claude` prompts) are not scripts and are allowed.
 *
 * Configuration: {"refused_programs": ["rm", ...]}; the default refuses `rm`.
 */

import { parse } from 'rdev:plugin/shell@0.1.0';
import { allow, deny, log, parseConfig, parseScript, program } from './rdev-plugin.js';

const DEFAULTS = { refused_programs: ['rm'] };

// The host runs `configure` once when a version loads and snapshots the configured instance:
// every call starts from that snapshot, so what `configure` keeps here is there for every call.
let config = parseConfig('', DEFAULTS);

/**
 * @param {string} text the JSON configuration
 * @throws {import('./rdev-plugin.js').PluginError} refusing it
 */
export function configure(text) {
  config = parseConfig(text, DEFAULTS);
}

/** @returns {object[]} the bundled test cases */
export function selfTest() {
  // May be empty; cases returned here must hold under ANY configuration the plugin accepts,
  // since the host runs them against the configuration it is about to use.
  return [];
}

/**
 * @param {import('./rdev-plugin.js').Command} command
 * @param {import('./rdev-plugin.js').CommandContext} context
 * @returns {import('./rdev-plugin.js').Verdict}
 */
export function sanitize(command, context) {
  if (command.kind !== 'shell' || command.script === undefined) {
    return allow();
  }
  let script;
  try {
    script = parseScript(parse, command.script);
  } catch (error) {
    // What cannot be judged is refused.
    return deny(`the script cannot be parsed: ${error.message}`);
  }
  for (const simple of script.simpleCommands()) {
    const name = program(simple);
    if (name !== undefined && config.refused_programs.includes(name)) {
      log.info('refused a program', { program: name, project: context.project });
      return deny(`program \`${name}\` is refused`);
    }
  }
  return allow();
}
