//! Kubernetes backend: projects are pods, commands run through the pod exec API (websocket
//! channel protocol, with a liveness bound), cancel and timeout kill the remote process tree
//! through a second exec retried until confirmed, and every API-server call goes through a
//! circuit breaker.

mod breaker;
mod channel;
mod cluster;
mod items;
mod kill;
mod session;
mod settings;
mod target;

pub use breaker::{BreakerView, Position};
pub use cluster::Cluster;
pub use settings::KubernetesConfig;

use async_trait::async_trait;

use self::session::RemoteExecution;
use self::target::Target;
use super::{ExecBackend, ExecError, Execution, Invocation};
use crate::claude_items::{ItemKind, ItemSummary};
use crate::projects::Project;

/// How long startup waits for the kill of a command left by an earlier run.
const LEFTOVER_KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs commands in pods.
#[derive(Clone)]
pub struct KubernetesBackend {
    cluster: Cluster,
    identity: String,
}

impl KubernetesBackend {
    /// A backend on a connected cluster.
    pub fn new(cluster: Cluster) -> Self {
        let identity = format!("kubernetes:{}", cluster.namespace());
        Self { cluster, identity }
    }

    fn target(&self, project: &Project) -> Result<Target, ExecError> {
        Target::of(&self.cluster, project)
    }
}

#[async_trait]
impl ExecBackend for KubernetesBackend {
    async fn ready(&self) -> Result<(), String> {
        self.cluster.available()?;
        match self.cluster.probe().await {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("Kubernetes API unreachable: {e}")),
        }
    }

    fn available(&self) -> Result<(), String> {
        self.cluster.available()
    }

    fn readiness_details(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "namespace": self.cluster.namespace(),
            "breaker": self.cluster.breaker(),
            "pods_watched": self.cluster.pods().len(),
        }))
    }

    async fn start(&self, project: &Project, invocation: &Invocation) -> Result<Box<dyn Execution>, ExecError> {
        let target = self.target(project)?;
        if target.is_gone(&self.cluster) {
            return Err(ExecError::Remote(format!("pod {} no longer exists", target.pod)));
        }
        let execution = RemoteExecution::start(&self.cluster, target, invocation).await?;
        Ok(Box::new(execution))
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    async fn kill_leftover(&self, runner: &str, pgid: i64) {
        let found = Target::from_runner(runner, self.cluster.namespace());
        let (Some((target, exec_id)), Ok(pid)) = (found, u32::try_from(pgid)) else {
            tracing::warn!(runner, pgid, "not killing a process this backend did not start");
            return;
        };
        // A pod replaced under the same name has a new uid: the pid would name something else.
        if target.uid.is_some() && target.is_gone(&self.cluster) {
            return;
        }
        // The kill goes on in the background until confirmed; startup does not wait for it.
        let mut killing = kill::Killing::start(&self.cluster, &target, Some(pid), &exec_id);
        if !killing.confirmed_within(LEFTOVER_KILL_WAIT).await {
            tracing::warn!(pod = %target.pod, pid, "a command left by an earlier run is not killed yet; retrying");
        }
    }

    async fn kill_unrecorded(&self, project: &Project, command_id: &str) {
        let Ok(target) = self.target(project) else {
            return;
        };
        // The command's process carries its id as its exec id (see `session`).
        let mut killing = kill::Killing::start(&self.cluster, &target, None, command_id);
        if !killing.confirmed_within(LEFTOVER_KILL_WAIT).await {
            tracing::warn!(pod = %target.pod, command_id, "a command left by an earlier run is not killed yet; retrying");
        }
    }

    async fn list_items(&self, project: &Project, kind: ItemKind) -> Result<Vec<ItemSummary>, ExecError> {
        items::list(&self.cluster, &self.target(project)?, kind).await
    }

    async fn read_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<String, ExecError> {
        items::read(&self.cluster, &self.target(project)?, kind, name).await
    }

    async fn write_item(
        &self,
        project: &Project,
        kind: ItemKind,
        name: &str,
        content: &str,
    ) -> Result<bool, ExecError> {
        items::write(&self.cluster, &self.target(project)?, kind, name, content).await
    }

    async fn delete_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<(), ExecError> {
        items::delete(&self.cluster, &self.target(project)?, kind, name).await
    }
}
