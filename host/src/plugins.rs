//! Policy as WebAssembly plugins. The seams (command sanitizers, request validators, tool
//! policies, project discovery) are traits the rest of the gateway calls through [`Policies`]; the plugin [`manager`]
//! fills them with components loaded by the wasmtime [`runtime`], hot-swapped by [`reload`].

pub mod bindings;
pub mod cache;
mod call_state;
pub mod compat;
mod convert;
mod cpu_meter;
pub mod dropins;
pub mod embedded;
pub(crate) mod file;
pub mod harness;
mod inventory;
pub mod limits;
pub mod manager;
pub mod manifest;
mod policies;
pub mod reload;
pub mod rollout;
pub mod runtime;
mod shell_convert;
pub mod slot;
pub mod snapshot;
pub mod trust;
pub mod version;

pub use inventory::{DiscoveredProject, InventoryItem, Placement};
pub use policies::{Chains, Decision, Policies, Refusal, Refused};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A plugin failed (trap, deadline, bad output) or has no working version: callers fail closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` {message}")]
pub struct PluginError {
    /// Plugin name.
    pub plugin: String,
    /// Digest of the version that failed, if one ran.
    pub digest: Option<String>,
    /// What went wrong, phrased to follow the plugin's name ("exceeded its 20 ms deadline").
    pub message: String,
    /// Whose fault it is, which decides what the client is told.
    pub kind: FailureKind,
}

/// Why a plugin gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A version ran and failed: the request is refused (fail closed).
    Failed,
    /// No version is loaded at all: the gateway answers 503 until an operator fixes it.
    Unavailable,
    /// The call never ran because every call slot stayed busy: a retryable 503.
    Overloaded,
}

/// A plugin's answer and the version (digest) that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The answer.
    pub value: T,
    /// SHA-256 of the component that answered.
    pub digest: String,
}

/// A command as the plugin chains see it: the host's side of the WIT `command` record. The
/// commands layer converts its own type to and from this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginCommand {
    /// Kind.
    pub kind: String,
    /// Shell script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Argv arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Claude prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// What a sanitizer sees of a command.
#[derive(Debug, Clone, Serialize)]
pub struct SanitizeInput {
    /// Project name.
    pub project: String,
    /// The command as requested (or as rewritten by an earlier sanitizer).
    pub command: PluginCommand,
    /// Caller's key id.
    pub key_id: String,
    /// Caller's scopes.
    pub scopes: Vec<String>,
    /// The project's workspace.
    pub workdir: String,
}

/// A sanitizer's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through unchanged.
    Allow,
    /// Refuse it, with a reason for the client.
    Deny(String),
    /// Replace it (the host validates the replacement again).
    Rewrite(PluginCommand),
}

/// Judges commands before they are queued.
#[async_trait]
pub trait CommandSanitizer: Send + Sync {
    /// Plugin name, for errors and the audit trail.
    fn name(&self) -> &str;
    /// Whether it judges commands of `project`.
    fn applies_to(&self, _project: &str) -> bool {
        true
    }
    /// Judges one command.
    async fn sanitize(&self, input: &SanitizeInput) -> Result<Answer<Verdict>, PluginError>;
}

/// What a tool policy sees of one tool call of a `claude` run.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInput {
    /// Project name.
    pub project: String,
    /// The project's workspace.
    pub workdir: String,
    /// The `claude` command the call belongs to.
    pub command_id: String,
    /// Id of the key that submitted the command.
    pub key_id: String,
    /// Tool name (`Bash`, `Write`, `mcp__server__tool`…).
    pub tool_name: String,
    /// The tool's input (for `Bash`, as the sanitizer chain left it).
    pub input: serde_json::Value,
}

/// A tool policy's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCallVerdict {
    /// Let the call run.
    Allow,
    /// Refuse it, with a reason the agent sees.
    Deny(String),
}

/// Judges the tool calls of `claude` runs.
#[async_trait]
pub trait ToolPolicy: Send + Sync {
    /// Plugin name.
    fn name(&self) -> &str;
    /// Whether it judges the tool calls of runs in `project`.
    fn applies_to(&self, _project: &str) -> bool {
        true
    }
    /// Judges one tool call.
    async fn judge(&self, input: &ToolInput) -> Result<Answer<ToolCallVerdict>, PluginError>;
}

/// One field a validator objected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Checks mutating requests before they are applied.
#[async_trait]
pub trait RequestValidator: Send + Sync {
    /// Plugin name.
    fn name(&self) -> &str;
    /// Whether it checks requests about `project` (`None`: not about one project).
    fn applies_to(&self, _project: Option<&str>) -> bool {
        true
    }
    /// Field errors of a request about `resource` (empty when valid).
    async fn validate(
        &self,
        resource: &str,
        request: &serde_json::Value,
    ) -> Result<Answer<Vec<FieldError>>, PluginError>;
}

/// A webhook body rendered by a formatter, checked by the host (a header-safe content type, a
/// bounded body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The `content-type` to send.
    pub content_type: String,
    /// The body to send.
    pub body: Vec<u8>,
}

/// Turns the raw inventory into the project list.
#[async_trait]
pub trait ProjectDiscovery: Send + Sync {
    /// The projects in an inventory.
    async fn discover(&self, inventory: &[InventoryItem]) -> Result<Vec<DiscoveredProject>, PluginError>;
}

/// Default discovery: every inventory entry is a project of the same name.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughDiscovery;

#[async_trait]
impl ProjectDiscovery for PassThroughDiscovery {
    async fn discover(&self, inventory: &[InventoryItem]) -> Result<Vec<DiscoveredProject>, PluginError> {
        Ok(inventory
            .iter()
            .map(|item| DiscoveredProject {
                name: item.name.clone(),
                workspace: item.workspace.clone(),
                description: item.labels.get("description").cloned(),
            })
            .collect())
    }
}
