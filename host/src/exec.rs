//! Execution backends: how a command becomes a running process in a project's workspace, and
//! how the workspace's Claude configuration files are read and written.

pub mod kubernetes;
mod local;

pub use kubernetes::KubernetesBackend;
pub use local::{LocalBackend, guardian};

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::claude_items::{ItemKind, ItemSummary};
use crate::projects::Project;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl StreamKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// A program to run: never through an implicit shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command this process runs for. Pods mark the process with it (`RDEV_EXEC_ID`), so that
    /// a restart can find it even if the gateway died before it recorded the process group.
    pub command_id: String,
    /// Program name or path.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Variables the request set.
    pub env: BTreeMap<String, String>,
    /// Variables copied from the gateway's environment (`commands.inherit_env`): the whole rest
    /// of a local process's environment. Pods keep their own environment instead.
    pub inherited: BTreeMap<String, String>,
}

/// A backend failure.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The process could not be started.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// Program.
        program: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A workspace file operation failed.
    #[error("workspace I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The item does not exist.
    #[error("not found")]
    NotFound,
    /// The workspace layout is unsafe to touch (for example a symlink where a directory should be).
    #[error("{0}")]
    Unsafe(String),
    /// The backend cannot be reached now (for example the Kubernetes circuit breaker is open).
    #[error("{0}")]
    Unavailable(String),
    /// The remote side refused or failed the operation; the message says what happened.
    #[error("{0}")]
    Remote(String),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitOutcome {
    /// Exit status; 128 + signal number when killed by a signal.
    pub code: i32,
}

/// A kill that was sent but not confirmed (a pod behind a lost API-server connection): the
/// backend keeps trying.
pub struct PendingKill {
    /// Why it is not confirmed, for the command's record.
    pub reason: String,
    /// Resolves with a note once the kill is confirmed; never while it is not.
    pub confirmed: std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>,
}

/// A running process.
#[async_trait]
pub trait Execution: Send {
    /// The number recorded to kill it and everything it started after a restart: the local
    /// process group, or the pid of a command in a pod.
    fn process_group(&self) -> Option<i64>;
    /// Where the process runs, when the backend's [`identity`](ExecBackend::identity) is not
    /// precise enough (a pod): recorded with the process group.
    fn runner(&self) -> Option<String> {
        None
    }
    /// Output chunks as they arrive; closed when both streams end.
    fn take_output(&mut self) -> mpsc::Receiver<(StreamKind, Vec<u8>)>;
    /// Waits for the process to exit.
    async fn wait(&mut self) -> std::io::Result<ExitOutcome>;
    /// Kills the whole process group.
    async fn kill(&mut self);
    /// After [`kill`](Self::kill), the kill if it is not confirmed yet; `None` once it is (a
    /// local kill always is).
    fn unconfirmed_kill(&mut self) -> Option<PendingKill> {
        None
    }
}

/// Runs commands and manages workspace files for projects.
#[async_trait]
pub trait ExecBackend: Send + Sync {
    /// Whether the backend can run commands now; the error says why not.
    async fn ready(&self) -> Result<(), String>;
    /// Whether new work should be accepted right now, without any I/O (the Kubernetes backend
    /// says no while its circuit breaker is open).
    fn available(&self) -> Result<(), String> {
        Ok(())
    }
    /// Backend-specific readiness details for `/ready` (the Kubernetes API connection).
    fn readiness_details(&self) -> Option<serde_json::Value> {
        None
    }
    /// Starts a process in the project's workspace.
    async fn start(&self, project: &Project, invocation: &Invocation) -> Result<Box<dyn Execution>, ExecError>;
    /// Where this backend runs processes (for the local backend: this host, this boot), recorded
    /// with every process group.
    fn identity(&self) -> &str;
    /// Kills a process group left over from an earlier run of the gateway, if it was started
    /// here (`runner` is the [`identity`](Self::identity) recorded with it); a process group
    /// number from another host or an earlier boot names some unrelated process.
    async fn kill_leftover(&self, runner: &str, pgid: i64);
    /// Kills what an earlier run of the gateway started for `command_id` in `project` but died
    /// before recording. Locally there is nothing to do: the guardian killed it with the gateway.
    async fn kill_unrecorded(&self, project: &Project, command_id: &str) {
        let _ = (project, command_id);
    }
    /// Claude configuration items of a kind.
    async fn list_items(&self, project: &Project, kind: ItemKind) -> Result<Vec<ItemSummary>, ExecError>;
    /// One item's content.
    async fn read_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<String, ExecError>;
    /// Creates or replaces an item; true if it was created.
    async fn write_item(&self, project: &Project, kind: ItemKind, name: &str, content: &str)
    -> Result<bool, ExecError>;
    /// Deletes an item.
    async fn delete_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<(), ExecError>;
}
