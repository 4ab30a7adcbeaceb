//! Project settings: the `project_defaults` section and the per-project `[projects.NAME]`
//! overrides of the configuration.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Settings of one project.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, utoipa::ToSchema)]
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
    /// `--max-turns` of every `claude` run.
    pub claude_max_turns: u32,
    /// `--permission-mode` of every `claude` run.
    pub claude_permission_mode: ClaudePermissionMode,
    /// `--max-budget-usd` of every `claude` run (none: no budget cap).
    pub claude_max_budget_usd: Option<f64>,
    /// Tools a `claude` run may call (exact names, or a prefix ending in `*` such as
    /// `mcp__docs__*`); others are denied. `Bash` calls are also judged by the sanitizers, file
    /// tools by their paths.
    pub claude_allowed_tools: Vec<String>,
    /// The output of an ended command is deleted this many seconds after it finished (the
    /// command's record stays); 0: kept forever.
    pub output_max_age_secs: u64,
    /// Most bytes of stored output of the project's ended commands: beyond it, the output of the
    /// commands that finished first is deleted; 0: no bound.
    pub output_max_bytes: u64,
}

/// Claude Code's permission modes (`--permission-mode`). Runs are unattended: `dontAsk` (the
/// default) denies whatever would need a person to approve it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClaudePermissionMode {
    /// Deny what is not allowed in advance.
    DontAsk,
    /// Accept file edits without asking.
    AcceptEdits,
    /// Let the model decide when to ask.
    Auto,
    /// Ask for everything (nobody answers an unattended run: it is denied).
    Manual,
    /// Plan only, change nothing.
    Plan,
    /// Skip every permission check (sandboxes only).
    BypassPermissions,
}

impl ClaudePermissionMode {
    /// The value Claude Code takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DontAsk => "dontAsk",
            Self::AcceptEdits => "acceptEdits",
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Plan => "plan",
            Self::BypassPermissions => "bypassPermissions",
        }
    }
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
    /// `--max-turns` of every `claude` run.
    pub claude_max_turns: Option<u32>,
    /// `--permission-mode` of every `claude` run.
    pub claude_permission_mode: Option<ClaudePermissionMode>,
    /// `--max-budget-usd` of every `claude` run.
    pub claude_max_budget_usd: Option<f64>,
    /// Tools a `claude` run may call.
    pub claude_allowed_tools: Option<Vec<String>>,
    /// Seconds the output of an ended command is kept.
    pub output_max_age_secs: Option<u64>,
    /// Most bytes of stored output of ended commands.
    pub output_max_bytes: Option<u64>,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            allowed_kinds: ["shell", "git", "claude"].map(String::from).to_vec(),
            max_concurrent_commands: 4,
            default_timeout_secs: 600,
            idle_timeout_secs: 0,
            claude_max_turns: 50,
            claude_permission_mode: ClaudePermissionMode::DontAsk,
            claude_max_budget_usd: None,
            claude_allowed_tools: [
                "Bash",
                "Edit",
                "Glob",
                "Grep",
                "LS",
                "MultiEdit",
                "NotebookEdit",
                "NotebookRead",
                "Read",
                "Task",
                "TodoWrite",
                "Write",
            ]
            .map(String::from)
            .to_vec(),
            output_max_age_secs: 30 * 24 * 3600,
            output_max_bytes: 0,
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
                    claude_max_turns: p.claude_max_turns.unwrap_or(d.claude_max_turns),
                    claude_permission_mode: p.claude_permission_mode.unwrap_or(d.claude_permission_mode),
                    claude_max_budget_usd: p.claude_max_budget_usd.or(d.claude_max_budget_usd),
                    claude_allowed_tools: p
                        .claude_allowed_tools
                        .clone()
                        .unwrap_or_else(|| d.claude_allowed_tools.clone()),
                    output_max_age_secs: p.output_max_age_secs.unwrap_or(d.output_max_age_secs),
                    output_max_bytes: p.output_max_bytes.unwrap_or(d.output_max_bytes),
                },
            ),
        }
    }
}
