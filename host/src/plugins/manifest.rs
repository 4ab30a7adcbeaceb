//! Plugin manifests: the `[[plugins]]` entries of the gateway config that say which component
//! file implements which world, with what configuration, budgets, projects and order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rollout::RolloutSettings;
use super::runtime::{Budget, MAX_MEMORY_BYTES};

/// The plugin kinds, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `command-sanitizer`: allow, deny or rewrite commands.
    CommandSanitizer,
    /// `request-validator`: field errors for mutating requests.
    RequestValidator,
    /// `webhook-formatter`: renders webhook deliveries.
    WebhookFormatter,
    /// `project-discovery`: turns the inventory into projects.
    ProjectDiscovery,
    /// `tool-policy`: allow or deny the tool calls of `claude` runs.
    ToolPolicy,
}

impl World {
    /// The WIT world name.
    pub fn as_str(self) -> &'static str {
        match self {
            World::CommandSanitizer => "command-sanitizer",
            World::RequestValidator => "request-validator",
            World::WebhookFormatter => "webhook-formatter",
            World::ProjectDiscovery => "project-discovery",
            World::ToolPolicy => "tool-policy",
        }
    }
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    /// Unique name, used in errors, the audit log and `GET /v1/plugins`.
    pub name: String,
    /// The world the component implements.
    pub world: World,
    /// The component file; relative paths are inside the plugin directory.
    pub file: PathBuf,
    /// Configuration handed to the plugin's `configure`, as JSON (a TOML table here).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Deadline of one call, in milliseconds of CPU time (instantiation and `configure` included).
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Memory limit, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Fuel (roughly, wasm instructions) per call; unlimited when absent.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Projects the plugin applies to; empty means all.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Position in its chain: lower runs first; ties run in name order.
    #[serde(default)]
    pub order: i32,
    /// A candidate version judged in shadow beside the serving one and never enforced (relative
    /// paths are inside the plugin directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_file: Option<PathBuf>,
    /// How the shadow is sampled and bounded, what promotion requires, and what a new version is
    /// watched against after a swap.
    #[serde(default)]
    pub rollout: RolloutSettings,
}

/// The order and budgets a deployment sets instead of the defaults (a command line's or a
/// request's), written into a manifest entry (JSON) before it is parsed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Overrides {
    /// Position in its chain.
    pub order: Option<i32>,
    /// Deadline of one call, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory limit, in MiB.
    pub memory_mib: Option<u64>,
}

impl Overrides {
    /// Sets the values given in `entry`.
    pub fn apply(&self, entry: &mut serde_json::Value) {
        let values = [
            ("order", self.order.map(serde_json::Value::from)),
            ("deadline_ms", self.deadline_ms.map(serde_json::Value::from)),
            ("memory_mib", self.memory_mib.map(serde_json::Value::from)),
        ];
        for (key, value) in values {
            if let Some(value) = value {
                entry[key] = value;
            }
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}
fn default_deadline_ms() -> u64 {
    20
}
fn default_memory_mib() -> u64 {
    32
}

impl PluginManifest {
    /// A manifest with default budgets.
    pub fn new(name: &str, world: World, file: &str, order: i32) -> Self {
        Self {
            name: name.into(),
            world,
            file: file.into(),
            config: empty_object(),
            deadline_ms: default_deadline_ms(),
            memory_mib: default_memory_mib(),
            fuel: None,
            projects: Vec::new(),
            order,
            shadow_file: None,
            rollout: RolloutSettings::default(),
        }
    }

    /// Whether a version loaded with `other` serves exactly as one loaded with this manifest
    /// would: everything but the shadow and the rollout settings is the same.
    pub fn serves_like(&self, other: &PluginManifest) -> bool {
        let serving = |m: &PluginManifest| PluginManifest {
            shadow_file: None,
            rollout: RolloutSettings::default(),
            ..m.clone()
        };
        serving(self) == serving(other)
    }

    /// Whether this world's calls can be judged in shadow: those that decide (sanitizers,
    /// validators, tool policies).
    pub fn has_shadow_calls(&self) -> bool {
        matches!(
            self.world,
            World::CommandSanitizer | World::RequestValidator | World::ToolPolicy
        )
    }

    /// The budget of one call.
    pub fn budget(&self) -> Budget {
        Budget {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: (self.memory_mib as usize) << 20,
            fuel: self.fuel,
        }
    }

    /// The component file, resolved against the plugin directory.
    pub fn path(&self, plugins_dir: &Path) -> PathBuf {
        plugins_dir.join(&self.file)
    }

    /// Whether the plugin applies to `project` (`None`: requests not about one project).
    pub fn applies_to(&self, project: Option<&str>) -> bool {
        match project {
            Some(p) => self.projects.is_empty() || self.projects.iter().any(|x| x == p),
            None => true,
        }
    }

    /// The problems with this entry, if any.
    pub fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if !crate::names::is_valid_name(name) {
            return Err(format!(
                "plugin name `{name}` must be 1-63 characters of [A-Za-z0-9._-]"
            ));
        }
        if !(1..=10_000).contains(&self.deadline_ms) {
            return Err(format!("plugin `{name}`: deadline_ms must be between 1 and 10000"));
        }
        if self.memory_mib == 0 || (self.memory_mib as usize) << 20 > MAX_MEMORY_BYTES {
            return Err(format!(
                "plugin `{name}`: memory_mib must be between 1 and {}",
                MAX_MEMORY_BYTES >> 20
            ));
        }
        if self.fuel == Some(0) {
            return Err(format!("plugin `{name}`: fuel must be at least 1"));
        }
        if self.shadow_file.is_some() && !self.has_shadow_calls() {
            return Err(format!(
                "plugin `{name}`: shadow_file is for sanitizers, validators and tool policies, not the `{}` world",
                self.world.as_str()
            ));
        }
        self.rollout.check(name)
    }
}

/// Checks a whole plugin list: every entry, and names unique.
pub fn check_all(manifests: &[PluginManifest]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for m in manifests {
        m.check()?;
        if !names.insert(&m.name) {
            return Err(format!("plugin name `{}` is used twice", m.name));
        }
    }
    Ok(())
}

/// The plugins a gateway loads when its config names none: the default plugins built from
/// `plugins/`.
pub fn defaults() -> Vec<PluginManifest> {
    vec![
        PluginManifest::new(
            "request-validator",
            World::RequestValidator,
            "request_validator.wasm",
            0,
        ),
        PluginManifest::new("shell-sanitizer", World::CommandSanitizer, "shell_sanitizer.wasm", 0),
        PluginManifest::new("label-discovery", World::ProjectDiscovery, "label_discovery.wasm", 0),
        PluginManifest::new("slack-formatter", World::WebhookFormatter, "slack_formatter.wasm", 0),
        PluginManifest::new(
            "discord-formatter",
            World::WebhookFormatter,
            "discord_formatter.wasm",
            0,
        ),
        PluginManifest::new(
            "generic-formatter",
            World::WebhookFormatter,
            "generic_formatter.wasm",
            0,
        ),
    ]
}
