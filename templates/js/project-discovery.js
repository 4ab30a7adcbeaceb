/**
 * {{name}}: a project discovery that makes every inventory item a project, in order, except
 * the items labelled hidden (the hidden label set to `true`).
 *
 * Configuration: {"hidden_label": "..."}; the default label is `rdev.hidden`.
 */

import { parseConfig, project } from './rdev-plugin.js';

const DEFAULTS = { hidden_label: 'rdev.hidden' };

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
 * @param {import('./rdev-plugin.js').InventoryItem[]} inventory
 * @returns {import('./rdev-plugin.js').Project[]}
 */
export function discover(inventory) {
  return inventory
    .filter((item) => !item.labels.some(([key, value]) => key === config.hidden_label && value === 'true'))
    .map((item) => project(item.name, item.workspace));
}
