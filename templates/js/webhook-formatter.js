/**
 * {{name}}: a webhook formatter that renders each event as one line of plain text, e.g.
 * `[ci] command.failed cmd_2 in web, exit code 1 (sub_test)`: the prefix, the event type, what
 * the event says about its command (id, project, exit code) and the subscription.
 *
 * Configuration: {"prefix": "..."}; the default prefix is `rdev`.
 */

import { fail, isObject, parseConfig, rendered } from './rdev-plugin.js';

const DEFAULTS = { prefix: 'rdev' };

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
 * @param {string} eventType e.g. `command.failed`
 * @param {string} event the event, as JSON
 * @param {import('./rdev-plugin.js').WebhookTarget} target
 * @returns {import('./rdev-plugin.js').Rendered}
 * @throws {import('./rdev-plugin.js').PluginError} failing the attempt, which is retried later
 */
export function format(eventType, event, target) {
  let parsed;
  try {
    parsed = JSON.parse(event);
  } catch {
    fail('the event is not JSON');
  }
  let text = `[${config.prefix}] ${eventType}`;
  const command = isObject(parsed) ? parsed.command : undefined;
  if (isObject(command)) {
    if (typeof command.id === 'string') {
      text += ` ${command.id}`;
    }
    if (typeof command.project === 'string') {
      text += ` in ${command.project}`;
    }
    if (typeof command.exit_code === 'number') {
      text += `, exit code ${command.exit_code}`;
    }
  }
  text += ` (${target.subscription})`;
  return rendered('text/plain; charset=utf-8', text);
}
