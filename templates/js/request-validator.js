/**
 * {{name}}: a request validator that keeps forbidden environment variables out of commands.
 *
 * A command request whose `env` sets one of the forbidden variables gets one field error per
 * such variable, so the client sees them all at once. Requests for other resources (keys,
 * claude items) are not judged.
 *
 * Configuration: {"forbidden_env": ["LD_PRELOAD", ...]}; the default forbids `LD_PRELOAD`.
 */

import { fieldError, isObject, parseConfig } from './rdev-plugin.js';

const DEFAULTS = { forbidden_env: ['LD_PRELOAD'] };

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
 * @param {string} resource `key`, `command` or `claude-item`
 * @param {string} request the request's JSON body
 * @returns {import('./rdev-plugin.js').FieldError[]} empty when the request is valid
 */
export function validate(resource, request) {
  if (resource !== 'command') {
    return [];
  }
  let body;
  try {
    body = JSON.parse(request);
  } catch {
    body = undefined;
  }
  if (!isObject(body)) {
    return [fieldError('', 'the request is not a JSON object')];
  }
  const env = body.env;
  if (env === undefined || env === null) {
    return [];
  }
  if (!isObject(env)) {
    return [fieldError('env', 'must be an object')];
  }
  return Object.keys(env)
    .filter((key) => config.forbidden_env.includes(key))
    .map((key) => fieldError(`env.${key}`, `\`${key}\` may not be set`));
}
