//! Project settings: the `project_defaults` section and the per-project `[projects.NAME]`
//! overrides of the configuration.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Settings of one project.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectSettings {
    /// Command kinds this project accepts.
    pub allowed_kinds: Vec<String>,
    /// Commands running at once; more wait in the queue.
    pub max_concurrent_commands: u32,
    /// Timeout for commands that do not ask for one.
    pub default_timeout_secs: u64,
    /// A command that writes no output for this long is killed and ends `timed_out` (a hung
    /// process that would otherwise hold its slot until its timeout); 0: never. A request cannot
    /// change it.
    pub idle_timeout_secs: u64,
}

/// Per-project settings; unset fields fall back to `project_defaults`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectOverride {
    /// Free-text description shown in the project list.
    pub description: Option<String>,
    /// Command kinds this project accepts.
    pub allowed_kinds: Option<Vec<String>>,
    /// Commands running at once.
    pub max_concurrent_commands: Option<u32>,
    /// Timeout for commands that do not ask for one.
    pub default_timeout_secs: Option<u64>,
    /// Seconds without output after which a command is killed (0: never).
    pub idle_timeout_secs: Option<u64>,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            allowed_kinds: ["shell", "git", "claude"].map(String::from).to_vec(),
            max_concurrent_commands: 4,
            default_timeout_secs: 600,
            idle_timeout_secs: 0,
        }
    }
}

/// The project sections of the configuration.
#[derive(Debug, Clone, Default)]
pub struct ProjectConfig {
    /// Settings of projects that have no override.
    pub defaults: ProjectSettings,
    /// Per-project overrides, by project name.
    pub overrides: BTreeMap<String, ProjectOverride>,
}

impl ProjectConfig {
    /// The description and effective settings of a project.
    pub fn settings_of(&self, name: &str) -> (Option<String>, ProjectSettings) {
        let d = &self.defaults;
        match self.overrides.get(name) {
            None => (None, d.clone()),
            Some(p) => (
                p.description.clone(),
                ProjectSettings {
                    allowed_kinds: p.allowed_kinds.clone().unwrap_or_else(|| d.allowed_kinds.clone()),
                    max_concurrent_commands: p.max_concurrent_commands.unwrap_or(d.max_concurrent_commands),
                    default_timeout_secs: p.default_timeout_secs.unwrap_or(d.default_timeout_secs),
                    idle_timeout_secs: p.idle_timeout_secs.unwrap_or(d.idle_timeout_secs),
                },
            ),
        }
    }
}
