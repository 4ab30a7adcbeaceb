//! Policy seams: command sanitizers, request validators and project discovery. The host only
//! calls them and enforces their contract (fail closed, re-check rewrites); the policies
//! themselves are plugins. Without plugins every seam passes requests through unchanged.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::Serialize;

use crate::commands::CommandSpec;
use crate::projects::{DiscoveredProject, InventoryItem};

/// A plugin failed (trap, deadline, bad output): callers fail closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}` failed: {message}")]
pub struct PluginError {
    /// Plugin name.
    pub plugin: String,
    /// What went wrong.
    pub message: String,
}

/// What a sanitizer sees of a command.
#[derive(Debug, Clone, Serialize)]
pub struct SanitizeInput {
    /// Project name.
    pub project: String,
    /// The command as requested (or as rewritten by an earlier sanitizer).
    pub command: CommandSpec,
    /// Caller's key id.
    pub key_id: String,
    /// Caller's scopes.
    pub scopes: Vec<String>,
}

/// A sanitizer's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through unchanged.
    Allow,
    /// Refuse it, with a reason for the client.
    Deny(String),
    /// Replace it (the host validates the replacement again).
    Rewrite(CommandSpec),
}

/// Judges commands before they are queued.
#[async_trait]
pub trait CommandSanitizer: Send + Sync {
    /// Plugin name, for errors and the audit trail.
    fn name(&self) -> &str;
    /// Judges one command.
    async fn sanitize(&self, input: &SanitizeInput) -> Result<Verdict, PluginError>;
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
    /// Field errors of a request about `resource` (empty when valid).
    async fn validate(&self, resource: &str, request: &serde_json::Value) -> Result<Vec<FieldError>, PluginError>;
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

/// A plugin decision, for the command's audit trail.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    /// Plugin name.
    pub plugin: String,
    /// `allow`, `deny` or `rewrite`.
    pub verdict: &'static str,
    /// Reason given with a denial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time the call took, in microseconds.
    pub duration_us: u64,
}

/// Why a policy refused a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// A sanitizer denied the command.
    #[error("denied by `{plugin}`: {reason}")]
    Denied {
        /// Plugin name.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// A validator listed field errors.
    #[error("request rejected by `{plugin}`")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// The fields.
        errors: Vec<FieldError>,
    },
    /// A plugin failed; the request is refused (fail closed).
    #[error(transparent)]
    Failed(#[from] PluginError),
}

/// The active policy chains.
#[derive(Clone, Default)]
pub struct Policies {
    sanitizers: Vec<Arc<dyn CommandSanitizer>>,
    validators: Vec<Arc<dyn RequestValidator>>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("sanitizers", &self.sanitizers.len())
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl Policies {
    /// Chains of sanitizers and validators, called in order.
    pub fn new(sanitizers: Vec<Arc<dyn CommandSanitizer>>, validators: Vec<Arc<dyn RequestValidator>>) -> Self {
        Self { sanitizers, validators }
    }

    /// Runs the validators over a request; the first one with errors refuses it.
    pub async fn validate(&self, resource: &str, request: &serde_json::Value) -> Result<(), Refusal> {
        for v in &self.validators {
            let errors = v.validate(resource, request).await?;
            if !errors.is_empty() {
                return Err(Refusal::Invalid {
                    plugin: v.name().to_owned(),
                    errors,
                });
            }
        }
        Ok(())
    }

    /// Runs the sanitizer chain. Each rewrite is re-checked by `recheck` before the next plugin
    /// sees it. Returns the final command and every decision taken.
    pub async fn sanitize(
        &self,
        mut input: SanitizeInput,
        recheck: impl Fn(&CommandSpec) -> Result<(), String>,
    ) -> Result<(CommandSpec, Vec<Decision>), (Refusal, Vec<Decision>)> {
        let mut decisions = Vec::new();
        for s in &self.sanitizers {
            let started = Instant::now();
            let verdict = match s.sanitize(&input).await {
                Ok(v) => v,
                Err(e) => return Err((e.into(), decisions)),
            };
            let decision = |verdict, reason| Decision {
                plugin: s.name().to_owned(),
                verdict,
                reason,
                duration_us: started.elapsed().as_micros() as u64,
            };
            match verdict {
                Verdict::Allow => decisions.push(decision("allow", None)),
                Verdict::Deny(reason) => {
                    decisions.push(decision("deny", Some(reason.clone())));
                    return Err((
                        Refusal::Denied {
                            plugin: s.name().to_owned(),
                            reason,
                        },
                        decisions,
                    ));
                }
                Verdict::Rewrite(spec) => {
                    decisions.push(decision("rewrite", None));
                    if let Err(problem) = recheck(&spec) {
                        let message = format!("rewrite is not a valid command: {problem}");
                        let error = PluginError {
                            plugin: s.name().to_owned(),
                            message,
                        };
                        return Err((error.into(), decisions));
                    }
                    input.command = spec;
                }
            }
        }
        Ok((input.command, decisions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Result<Verdict, PluginError>);

    #[async_trait]
    impl CommandSanitizer for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        async fn sanitize(&self, _: &SanitizeInput) -> Result<Verdict, PluginError> {
            self.1.clone()
        }
    }

    fn input() -> SanitizeInput {
        SanitizeInput {
            project: "demo".into(),
            command: CommandSpec::shell("ls"),
            key_id: "key_1".into(),
            scopes: vec![],
        }
    }

    fn chain(items: Vec<Fixed>) -> Policies {
        Policies::new(
            items
                .into_iter()
                .map(|f| Arc::new(f) as Arc<dyn CommandSanitizer>)
                .collect(),
            vec![],
        )
    }

    #[tokio::test]
    async fn empty_chain_passes_commands_through() {
        let (spec, decisions) = Policies::default().sanitize(input(), |_| Ok(())).await.unwrap();
        assert_eq!(spec, CommandSpec::shell("ls"));
        assert!(decisions.is_empty());
    }

    #[tokio::test]
    async fn a_denial_stops_the_chain_and_names_the_plugin() {
        let policies = chain(vec![
            Fixed("first", Ok(Verdict::Allow)),
            Fixed("second", Ok(Verdict::Deny("no".into()))),
            Fixed("third", Ok(Verdict::Allow)),
        ]);
        let (refusal, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Denied { ref plugin, .. } if plugin == "second"));
        assert_eq!(decisions.len(), 2);
    }

    #[tokio::test]
    async fn a_failing_plugin_fails_closed() {
        let error = PluginError {
            plugin: "broken".into(),
            message: "trap".into(),
        };
        let policies = chain(vec![Fixed("broken", Err(error))]);
        let (refusal, _) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Failed(_)));
    }

    #[tokio::test]
    async fn rewrites_are_rechecked_before_use() {
        let policies = chain(vec![Fixed(
            "rewriter",
            Ok(Verdict::Rewrite(CommandSpec::shell("echo hi"))),
        )]);
        let (spec, _) = policies.sanitize(input(), |_| Ok(())).await.unwrap();
        assert_eq!(spec, CommandSpec::shell("echo hi"));
        let (refusal, _) = policies.sanitize(input(), |_| Err("bad".into())).await.unwrap_err();
        assert!(refusal.to_string().contains("rewriter"));
    }
}
