//! Commands: acceptance (validation, policies, idempotency), the per-project priority queue,
//! execution and cancellation. Every accepted command ends in exactly one terminal state.

mod events;
mod output;
mod queue;
mod recovery;
mod runner;
mod spec;

pub use spec::{CommandRequest, CommandSpec, PRIORITY_RANGE, SpecError};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::auth::Principal;
use crate::config::Config;
use crate::exec::ExecBackend;
use crate::plugins::{Decision, Policies, Refusal, Refused, SanitizeInput};
use crate::projects::{Project, ProjectRegistry};
use crate::replicas::{Notice, Notices, Replica};
use crate::store::{AuditEntry, CommandRecord, CommandState, Inserted, Store, StoreError, StoreResult, Transition};
use crate::streaming::OutputHub;
use crate::telemetry::Metrics;
use crate::time::now_ms;

/// How long a cancel waits for the command to end before answering with its current state.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// How often a cancel of a command running elsewhere looks whether it ended.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Key id.
    pub key_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
}

impl Actor {
    /// An audit entry by this actor.
    pub fn audit(&self, action: &str, target: &str, outcome: &str, detail: Option<String>) -> AuditEntry {
        AuditEntry {
            at: now_ms(),
            key_id: self.key_id.clone(),
            client_ip: self.client_ip.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            request_id: self.request_id.clone(),
            detail,
        }
    }
}

/// Why a command was not accepted or changed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request is invalid.
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(SpecError),
    /// A policy refused it; the decisions taken up to the refusal.
    #[error("{0}")]
    Refused(Refusal, Vec<Decision>),
    /// The idempotency key was used with a different request.
    #[error("idempotency key already used for a different request")]
    IdempotencyConflict,
    /// The command already ended.
    #[error("command already ended ({0})")]
    AlreadyEnded(CommandState),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The execution backend cannot take work now (the message says why).
    #[error("{0}")]
    BackendUnavailable(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a running command is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled,
    Interrupted,
}

struct RunningCommand {
    /// The replica id it was claimed under.
    owner: String,
    stop: watch::Sender<Option<StopReason>>,
    done: watch::Receiver<bool>,
}

/// What the command service works with.
pub struct CommandServices {
    /// Where commands, their output and their audit rows are stored.
    pub store: Arc<dyn Store>,
    /// Where they run.
    pub backend: Arc<dyn ExecBackend>,
    /// The projects they run in.
    pub projects: ProjectRegistry,
    /// This replica's live streams.
    pub hub: OutputHub,
    /// The policy chains they pass.
    pub policies: Policies,
    /// The configuration.
    pub config: Arc<Config>,
    /// Counters.
    pub metrics: Metrics,
    /// This process among the replicas (the owner of what it claims).
    pub replica: Arc<Replica>,
    /// Notices to and from the other replicas.
    pub notices: Notices,
}

struct Inner {
    store: Arc<dyn Store>,
    backend: Arc<dyn ExecBackend>,
    projects: ProjectRegistry,
    hub: OutputHub,
    policies: Policies,
    config: Arc<Config>,
    inherited_env: BTreeMap<String, String>,
    running: Mutex<HashMap<String, RunningCommand>>,
    dispatching: tokio::sync::Mutex<()>,
    accepting: AtomicBool,
    tasks: TaskTracker,
    last_queue_seq: AtomicI64,
    metrics: Metrics,
    replica: Arc<Replica>,
    notices: Notices,
}

/// The command service.
#[derive(Clone)]
pub struct Commands {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commands")
    }
}

/// A state change of a command, audited by `actor` as `command.<event>` with its exit code and
/// reason, so that every change of every command is recorded the same way.
fn state_change<'a>(
    actor: &Actor,
    id: &'a str,
    from: &'a [CommandState],
    to: CommandState,
    exit_code: Option<i32>,
    reason: Option<&'a str>,
) -> Transition<'a> {
    let event = if to == CommandState::Running {
        "started"
    } else {
        to.as_str()
    };
    let detail = (exit_code.is_some() || reason.is_some())
        .then(|| serde_json::json!({ "exit_code": exit_code, "reason": reason }).to_string());
    Transition {
        id,
        from,
        to,
        exit_code,
        reason,
        at: now_ms(),
        audit: actor.audit(&format!("command.{event}"), id, to.as_str(), detail),
    }
}

fn request_hash(project: &str, request: &CommandRequest) -> String {
    let canonical = serde_json::to_string(&(project, request)).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Commands {
    /// A command service; call [`recover`](Self::recover) once before serving.
    pub fn new(services: CommandServices) -> Self {
        let CommandServices {
            store,
            backend,
            projects,
            hub,
            policies,
            config,
            metrics,
            replica,
            notices,
        } = services;
        let inherited_env = config
            .commands
            .inherit_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
            .collect();
        let inner = Inner {
            store,
            backend,
            projects,
            hub,
            policies,
            config,
            inherited_env,
            running: Mutex::default(),
            dispatching: tokio::sync::Mutex::new(()),
            accepting: AtomicBool::new(true),
            tasks: TaskTracker::new(),
            last_queue_seq: AtomicI64::new(0),
            metrics,
            replica,
            notices,
        };
        Self { inner: Arc::new(inner) }
    }

    fn next_queue_seq(&self) -> i64 {
        let now_us = now_ms() * 1000;
        let mut last = self.inner.last_queue_seq.load(Ordering::Relaxed);
        loop {
            let next = now_us.max(last + 1);
            match self
                .inner
                .last_queue_seq
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(current) => last = current,
            }
        }
    }

    /// Validates, runs the policies and queues a command. Returns it and whether it is new
    /// (false when an idempotency key matched an earlier identical request).
    pub async fn submit(
        &self,
        who: &Principal,
        actor: &Actor,
        project: &Project,
        request: CommandRequest,
        idempotency_key: Option<String>,
    ) -> Result<(CommandRecord, bool), CommandError> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(CommandError::ShuttingDown);
        }
        let request_hash = idempotency_key.as_ref().map(|_| request_hash(&project.name, &request));
        // A retry returns what the first request got, even if policies or settings changed since.
        if let Some(key) = &idempotency_key
            && let Some(existing) = self.inner.store.find_idempotent(&who.key.id, key).await?
        {
            if existing.request_hash != request_hash {
                return Err(CommandError::IdempotencyConflict);
            }
            return Ok((existing, false));
        }
        self.inner
            .backend
            .available()
            .map_err(CommandError::BackendUnavailable)?;
        let (priority, timeout_secs) = self.limits(project, &request)?;
        let (spec, decisions) = self.apply_policies(who, actor, project, &request).await?;
        let record = CommandRecord {
            id: format!("cmd_{}", uuid::Uuid::new_v4().simple()),
            project: project.name.clone(),
            kind: spec.kind.clone(),
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            state: CommandState::Queued,
            priority,
            timeout_secs: timeout_secs as i64,
            exit_code: None,
            reason: None,
            key_id: who.key.id.clone(),
            request_hash,
            idempotency_key,
            queue_seq: self.next_queue_seq(),
            pgid: None,
            runner: None,
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            owner: None,
        };
        let detail = serde_json::json!({ "kind": record.kind, "decisions": decisions }).to_string();
        let audit = actor.audit("command.accepted", &record.id, "queued", Some(detail));
        match self.record_accepted(&record, &audit).await? {
            Inserted::Existing(existing) if existing.request_hash == record.request_hash => Ok((*existing, false)),
            Inserted::Existing(_) => Err(CommandError::IdempotencyConflict),
            Inserted::New => {
                self.dispatch(&record.project).await;
                // The command is stored: answer it even if the re-read fails (a 503 here would
                // make the client submit it again).
                let current = self.inner.store.get_command(&record.id).await.ok().flatten();
                Ok((current.unwrap_or(record), true))
            }
        }
    }

    /// The priority and timeout of a request, checked against their limits.
    fn limits(&self, project: &Project, request: &CommandRequest) -> Result<(i32, u64), CommandError> {
        let invalid = |field, message| Err(CommandError::Invalid(SpecError { field, message }));
        let priority = request.priority.unwrap_or(0);
        if !PRIORITY_RANGE.contains(&priority) {
            let (low, high) = (PRIORITY_RANGE.start(), PRIORITY_RANGE.end());
            return invalid("priority", format!("must be between {low} and {high}"));
        }
        let max = self.inner.config.commands.max_timeout_secs;
        let timeout_secs = request.timeout_secs.unwrap_or(project.settings.default_timeout_secs);
        if timeout_secs == 0 || timeout_secs > max {
            return invalid("timeout_secs", format!("must be between 1 and {max}"));
        }
        Ok((priority, timeout_secs))
    }

    /// Validates the command, then runs the validators and the sanitizer chain (re-checking every
    /// rewrite). A refusal is audited with the decisions taken.
    async fn apply_policies(
        &self,
        who: &Principal,
        actor: &Actor,
        project: &Project,
        request: &CommandRequest,
    ) -> Result<(CommandSpec, Vec<Decision>), CommandError> {
        let commands = &self.inner.config.commands;
        let recheck = |spec: &CommandSpec| spec.validate(commands, &project.settings);
        let spec = CommandSpec::from_request(request);
        recheck(&spec).map_err(CommandError::Invalid)?;
        let body = serde_json::to_value(request).unwrap_or_default();
        // The validators judge the request while the sanitizers judge the command: the two chains
        // are independent, and on an idle gateway they run on two cores at once.
        let policies = self.inner.policies.clone();
        let name = project.name.clone();
        let validation = tokio::spawn(async move { policies.validate_recorded("command", &body, Some(&name)).await });
        let input = SanitizeInput {
            project: project.name.clone(),
            command: spec,
            key_id: who.key.id.clone(),
            scopes: who.key.scopes.clone(),
            workdir: project.workspace.to_string_lossy().into_owned(),
        };
        let recheck_message = |s: &CommandSpec| recheck(s).map_err(|e| format!("{}: {}", e.field, e.message));
        let sanitized = self.inner.policies.sanitize(input, recheck_message).await;
        let validated = validation.await.unwrap_or_else(|e| {
            let message = format!("validation stopped: {e}");
            let error = crate::plugins::PluginError {
                plugin: "request validators".into(),
                digest: None,
                message,
                kind: crate::plugins::FailureKind::Failed,
            };
            Err((Refusal::Failed(error), Vec::new()))
        });
        match (validated, sanitized) {
            (Err((refusal, mut decisions)), other) => {
                decisions.extend(other.map_or_else(|(_, taken)| taken, |(_, taken)| taken));
                Err(self.refused(actor, project, (refusal, decisions)).await)
            }
            (Ok(mut decisions), Ok((spec, taken))) => {
                decisions.extend(taken);
                Ok((spec, decisions))
            }
            (Ok(mut decisions), Err((refusal, taken))) => {
                decisions.extend(taken);
                Err(self.refused(actor, project, (refusal, decisions)).await)
            }
        }
    }

    /// Audits a refused command with the decisions taken, and returns the error for the client.
    async fn refused(&self, actor: &Actor, project: &Project, (refusal, decisions): Refused) -> CommandError {
        let detail = serde_json::json!({ "decisions": decisions, "reason": refusal.to_string() });
        let entry = actor.audit("command.rejected", &project.name, "rejected", Some(detail.to_string()));
        if let Err(e) = self.record_rejected(&entry).await {
            return e.into();
        }
        CommandError::Refused(refusal, decisions)
    }

    /// Cancels a queued or running command; returns it as it is afterwards.
    pub async fn cancel(&self, actor: &Actor, cmd: &CommandRecord) -> Result<CommandRecord, CommandError> {
        if cmd.state.is_terminal() {
            return Err(CommandError::AlreadyEnded(cmd.state));
        }
        let cancelled = self
            .end_queued(actor, &cmd.id, CommandState::Cancelled, "cancelled while queued")
            .await?;
        if !cancelled {
            if let Some(mut done) = self.stop(&cmd.id, StopReason::Cancelled) {
                let _ = tokio::time::timeout(CANCEL_WAIT, done.wait_for(|d| *d)).await;
            } else if self.inner.store.request_cancel(&cmd.id, now_ms()).await? {
                let command = cmd.id.clone();
                self.inner.notices.publish(Notice::CancelRequested { command });
                self.wait_ended(&cmd.id).await?;
            }
        }
        let current = self.inner.store.get_command(&cmd.id).await?;
        current.ok_or_else(|| CommandError::Store(StoreError::Corrupt("command vanished".into())))
    }

    /// Waits, up to [`CANCEL_WAIT`], for a command running on another replica to end.
    async fn wait_ended(&self, id: &str) -> StoreResult<()> {
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(CANCEL_POLL).await;
            if self
                .inner
                .store
                .get_command(id)
                .await?
                .is_none_or(|c| c.state.is_terminal())
            {
                break;
            }
        }
        Ok(())
    }

    /// Commands running on this replica.
    pub fn running_count(&self) -> usize {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Ends a queued command without running it; false if it was no longer queued.
    async fn end_queued(&self, actor: &Actor, id: &str, to: CommandState, reason: &str) -> StoreResult<bool> {
        let change = state_change(actor, id, &[CommandState::Queued], to, None, Some(reason));
        self.change_state(&change).await
    }

    /// The policy chains commands and other requests pass through.
    pub fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    fn stop(&self, id: &str, reason: StopReason) -> Option<watch::Receiver<bool>> {
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        let cmd = running.get(id)?;
        let _ = cmd.stop.send(Some(reason));
        Some(cmd.done.clone())
    }
}
