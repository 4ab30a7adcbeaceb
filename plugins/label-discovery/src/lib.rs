//! rdev's default project discovery. Conventions (`<prefix>` defaults to `rdev.orchard9.ai`):
//!
//! - `directory` items: a project named after the directory (`name`), workspace `workspace`.
//! - `pod` items: only pods labelled `<prefix>/project: "true"`. Name from `<prefix>/name`, else
//!   the pod name; workspace from `<prefix>/workspace`, else the item's workspace; description from
//!   `<prefix>/description` (annotations arrive merged into the labels).
//! - `config-map` items: every entry is a project. The entry's key is `name`; its fields arrive as
//!   labels: `name` (overrides the key), `workspace` (else the item's workspace), `description`,
//!   and `pod` (which pod serves it; the host uses it, discovery only passes the entry through).
//!
//! Invalid names are dropped, the first project of a name wins (inventory order), and a project
//! never gets a workspace the inventory did not offer. Other sources are ignored.

use rdev_plugin_sdk::{DiscoveryCase, InventoryItem, Project, fixtures, log};
use serde::Deserialize;

/// The discovery's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Prefix of the pod labels and annotations.
    pub prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            prefix: "rdev.orchard9.ai".into(),
        }
    }
}

/// A project name: 1–63 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn is_project_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn candidate(config: &Config, item: &InventoryItem) -> Option<Project> {
    let label = |key: &str| {
        item.label(&format!("{}/{key}", config.prefix))
            .filter(|v| !v.is_empty())
    };
    let field = |key: &str| item.label(key).filter(|v| !v.is_empty());
    let (name, workspace, description) = match item.source.as_str() {
        "directory" => (item.name.as_str(), item.workspace.as_str(), None),
        "pod" if label("project") == Some("true") => (
            label("name").unwrap_or(&item.name),
            label("workspace").unwrap_or(&item.workspace),
            label("description"),
        ),
        "config-map" => (
            field("name").unwrap_or(&item.name),
            field("workspace").unwrap_or(&item.workspace),
            field("description"),
        ),
        _ => return None,
    };
    let project = Project::new(name, workspace);
    Some(match description {
        Some(description) => project.with_description(description),
        None => project,
    })
}

/// The discovery.
pub struct LabelDiscovery;

impl rdev_plugin_sdk::Discovery for LabelDiscovery {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        match config.prefix.is_empty() || config.prefix.contains('/') {
            true => Err("`prefix` must be a non-empty DNS-style prefix without `/`".into()),
            false => Ok(()),
        }
    }

    fn discover(config: &Config, inventory: &[InventoryItem]) -> Result<Vec<Project>, String> {
        let mut projects: Vec<Project> = Vec::new();
        for project in inventory.iter().filter_map(|item| candidate(config, item)) {
            if !is_project_name(&project.name) {
                log::debug("dropped an invalid project name", &[("name", &project.name)]);
            } else if project.workspace.is_empty() {
                log::debug("dropped a project without a workspace", &[("name", &project.name)]);
            } else if !projects.iter().any(|p| p.name == project.name) {
                projects.push(project);
            }
        }
        Ok(projects)
    }

    fn self_test() -> Vec<DiscoveryCase> {
        fixtures::discovery_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_discovery!(LabelDiscovery);

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::Discovery;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_discovery::<LabelDiscovery>("fixtures.json").assert_passed();
    }

    #[test]
    fn a_configured_prefix_applies() {
        testing::run_discovery::<LabelDiscovery>("fixtures-prefix.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_other_prefixes() {
        for config in ["", r#"{"prefix": "example.com"}"#] {
            testing::self_test_discovery::<LabelDiscovery>(config).assert_passed();
        }
    }

    #[test]
    fn pods_take_name_workspace_and_description_from_labels() {
        let labels = [
            ("project", "true"),
            ("name", "web"),
            ("workspace", "/src"),
            ("description", "Web app"),
        ];
        let pod = InventoryItem {
            source: "pod".into(),
            name: "web-7d9f".into(),
            workspace: "/workspace".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (format!("rdev.orchard9.ai/{k}"), v.to_string()))
                .collect(),
        };
        let projects = LabelDiscovery::discover(&Config::default(), &[pod]).unwrap();
        assert_eq!(projects, vec![Project::new("web", "/src").with_description("Web app")]);
    }
}
