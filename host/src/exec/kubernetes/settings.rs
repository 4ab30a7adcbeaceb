//! The `[backend.kubernetes]` section of the configuration.

use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the `kubernetes` backend: where the workspace pods are and how they are labelled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Namespace of the workspace pods and the projects ConfigMap; default: the namespace of the
    /// kubeconfig context, or of the service account in a cluster.
    pub namespace: Option<String>,
    /// Prefix of the project labels and annotations (`<prefix>/project: "true"`, …).
    pub label_prefix: String,
    /// ConfigMap whose entries add projects or override what pod labels say.
    pub config_map: String,
    /// Workspace path inside a pod that does not name one.
    pub default_workspace: String,
    /// Kubeconfig file; unset means the in-cluster service account (or `$KUBECONFIG`,
    /// `~/.kube/config` outside a cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; unset means the current one.
    pub context: Option<String>,
    /// Consecutive failed API-server calls that open the circuit breaker.
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before one probe call may go through.
    pub breaker_open_secs: u64,
    /// Seconds an API-server call (or an exec's start) may take.
    pub api_timeout_secs: u64,
    /// Milliseconds the `/ready` check and the half-open breaker's probe (`GET /version`) may
    /// take: short, so that readiness answers quickly while the API server is unreachable.
    pub probe_timeout_ms: u64,
    /// Seconds an exec connection may stay silent (no frame, and no answer to the websocket
    /// pings sent every third of this) before its command ends as lost: a network partition
    /// is noticed within this bound instead of at the command's own timeout.
    pub exec_liveness_secs: u64,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            label_prefix: "rdev.orchard9.ai".into(),
            config_map: "rdev-projects".into(),
            default_workspace: "/workspace".into(),
            kubeconfig: None,
            context: None,
            breaker_failures: 5,
            breaker_open_secs: 10,
            api_timeout_secs: 10,
            probe_timeout_ms: 2000,
            exec_liveness_secs: 15,
        }
    }
}

impl KubernetesConfig {
    /// The section's problems, if any.
    pub fn validate(&self) -> Result<(), String> {
        let prefix = &self.label_prefix;
        if prefix.is_empty() || prefix.len() > 253 || prefix.contains('/') {
            return Err("backend.kubernetes.label_prefix must be a DNS prefix without `/`".into());
        }
        if !self.default_workspace.starts_with('/') {
            return Err("backend.kubernetes.default_workspace must be an absolute path".into());
        }
        if self.config_map.is_empty() {
            return Err("backend.kubernetes.config_map must not be empty".into());
        }
        if self.breaker_failures == 0 || self.breaker_open_secs == 0 || self.api_timeout_secs == 0 {
            return Err(
                "backend.kubernetes: breaker_failures, breaker_open_secs and api_timeout_secs must be at least 1"
                    .into(),
            );
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms > self.api_timeout_secs * 1000 {
            return Err("backend.kubernetes.probe_timeout_ms must be between 1 and api_timeout_secs".into());
        }
        if !(3..=3600).contains(&self.exec_liveness_secs) {
            return Err("backend.kubernetes.exec_liveness_secs must be between 3 and 3600".into());
        }
        Ok(())
    }
}
