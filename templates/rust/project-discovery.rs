//! `{{name}}`: a project discovery that makes every inventory item a project (directories,
//! pods, ConfigMap entries), except those labelled hidden.
//!
//! Configuration: `{"hidden_label": "rdev.hidden"}` (the default): an item whose label of that
//! name is `true` is not a project.

use rdev_plugin_sdk::{Discovery, InventoryItem, Project};
use serde::Deserialize;

/// The plugin.
pub struct Plugin;

/// The configuration. `deny_unknown_fields`: a misspelt option is refused, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The label that hides an item when it is `true`.
    pub hidden_label: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            hidden_label: "rdev.hidden".into(),
        }
    }
}

impl Discovery for Plugin {
    type Config = Config;

    fn discover(config: &Config, inventory: &[InventoryItem]) -> Result<Vec<Project>, String> {
        Ok(inventory
            .iter()
            .filter(|item| item.label(&config.hidden_label) != Some("true"))
            .map(|item| Project::new(&item.name, &item.workspace))
            .collect())
    }

    // `self_test` is left to the trait's default, no case. Cases returned here run against every
    // new version before it goes live, so they must hold under any configuration it accepts.
}

rdev_plugin_sdk::export_discovery!(Plugin);
