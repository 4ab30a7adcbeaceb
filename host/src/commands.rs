//! Commands: intake (validation, policies, idempotency, insert), the queue (claims across
//! replicas), the runner (execution of owned commands), cancellation and ownership, all changing
//! a command through one seam (`events.rs`). Every accepted command ends in exactly one terminal
//! state.

pub mod claude;
mod events;
mod explain;
mod intake;
mod output;
mod queue;
mod recovery;
mod runner;
mod settings;
mod spec;

pub use explain::{Asker, Explanation, Judged, Judgement, Queueable, judge};
pub use output::EVENT_STREAM;
pub use settings::CommandsConfig;
pub use spec::{ClaudeSession, CommandRequest, CommandSpec, PRIORITY_RANGE, SpecError};

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use claude::hooks::HookRuns;
use claude::{ToolCall, ToolVerdict};
use events::Events;
use intake::Intake;
use queue::Queue;
use runner::{Runner, StopReason};

use crate::auth::Principal;
use crate::exec::ExecBackend;
use crate::plugins::{Decision, Policies, Refusal};
use crate::projects::{Project, ProjectRegistry};
use crate::replicas::{Notice, Notices, Replica};
use crate::store::{AuditEntry, CommandRecord, CommandState, EventTag, Store, StoreError, StoreResult, Transition};
use crate::streaming::OutputHub;
use crate::telemetry::Metrics;
use crate::time::now_ms;

/// How long a cancel waits for the command to end before answering with its current state.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// How often a cancel of a command running elsewhere looks whether it ended.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// A request to run a command, as it came.
#[derive(Debug)]
pub struct Submission {
    /// The request body.
    pub request: CommandRequest,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Most commands the project may hold queued for this caller's tier.
    pub queue_bound: Option<u32>,
    /// The HTTP request's own audit row, committed in the command's transaction when the
    /// command is new (with outcome `202`), so that accepting costs one commit.
    pub request_audit: Option<crate::store::AuditEntry>,
}

/// Who asked, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Key id.
    pub key_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Trace id of the request, while traces are exported.
    pub trace_id: Option<String>,
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
            trace_id: self.trace_id.clone(),
            detail,
            event: None,
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
    /// No command of the project ran in the session asked for (the message says which).
    #[error("{0}")]
    SessionNotFound(String),
    /// The session asked for is in use by a command that has not ended.
    #[error("session {0} is in use by a command that has not ended; wait for it or fork the session")]
    SessionBusy(String),
    /// The command already ended.
    #[error("command already ended ({0})")]
    AlreadyEnded(CommandState),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The execution backend cannot take work now (the message says why).
    #[error("{0}")]
    BackendUnavailable(String),
    /// The project's queue holds this many commands, the submitter's bound.
    #[error("the project's queue is full ({0} commands waiting)")]
    QueueFull(u32),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// The `[commands]` section of the configuration.
    pub config: Arc<CommandsConfig>,
    /// Counters.
    pub metrics: Metrics,
    /// This process among the replicas (the owner of what it claims).
    pub replica: Arc<Replica>,
    /// Notices to and from the other replicas.
    pub notices: Notices,
}

/// The command service: intake, queue and runner, sharing the events seam.
#[derive(Clone)]
pub struct Commands {
    intake: Arc<Intake>,
    queue: Queue,
    runner: Runner,
    events: Events,
    store: Arc<dyn Store>,
    backend: Arc<dyn ExecBackend>,
    projects: ProjectRegistry,
    replica: Arc<Replica>,
    notices: Notices,
    hooks: Arc<HookRuns>,
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
    (id, project): (&'a str, &str),
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
    let mut audit = actor.audit(&format!("command.{event}"), id, to.as_str(), detail);
    audit.event = Some(EventTag::new(audit.action.clone(), Some(project)));
    Transition {
        id,
        from,
        to,
        exit_code,
        reason,
        at: now_ms(),
        audit,
    }
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
        let events = Events::new(store.clone(), hub, metrics, notices.clone());
        let hooks = Arc::new(HookRuns::default());
        let runner = Runner::new(
            events.clone(),
            store.clone(),
            backend.clone(),
            config.clone(),
            hooks.clone(),
        );
        let queue = Queue::new(
            events.clone(),
            store.clone(),
            projects.clone(),
            replica.clone(),
            runner.clone(),
        );
        let intake = Intake {
            events: events.clone(),
            store: store.clone(),
            backend: backend.clone(),
            policies,
            config,
            queue: queue.clone(),
            last_queue_seq: AtomicI64::new(0),
        };
        Self {
            intake: Arc::new(intake),
            queue,
            runner,
            events,
            store,
            backend,
            projects,
            replica,
            notices,
            hooks,
        }
    }

    /// Judges a tool call of a `claude` run for its `PreToolUse` hook: `None` unless `token` is
    /// the credential of `command_id`'s run, running on this replica. The decision is audited
    /// before it is answered (a failed audit write fails the call, which blocks the tool), then
    /// joins the run's stream.
    pub async fn pre_tool_use(
        &self,
        actor: &Actor,
        (command_id, token): (&str, &str),
        call: &ToolCall,
    ) -> Result<Option<ToolVerdict>, CommandError> {
        let Some(run) = self.hooks.find(command_id, token) else {
            return Ok(None);
        };
        let of = claude::tools::RunOf {
            project: &run.project,
            command_id,
            key_id: &run.key_id,
            scopes: &run.scopes,
        };
        let verdict = claude::tools::judge(self.intake.policies(), of, call).await;
        let mut audit = actor.audit(
            "command.tool_call",
            command_id,
            verdict.decision(),
            Some(verdict.audit_detail(call)),
        );
        audit.key_id = Some(run.key_id.clone());
        self.store.append_audit(&audit).await?;
        // The writer takes events as fast as it stores output; a run whose writer is gone has
        // ended, and its decision is on the audit trail.
        let _ = run.events.send(verdict.event(call)).await;
        Ok(Some(verdict))
    }

    /// Validates, runs the policies and queues a command. Returns it as stored (`queued`: it
    /// starts off the request path) and whether it is new (false when an idempotency key matched
    /// an earlier identical request).
    pub async fn submit(
        &self,
        who: &Principal,
        actor: &Actor,
        project: &Project,
        submission: Submission,
    ) -> Result<(CommandRecord, bool), CommandError> {
        self.intake.submit(who, actor, project, submission).await
    }

    /// What submitting `request` would do, with nothing queued, run or audited.
    pub async fn explain(
        &self,
        who: &Principal,
        project: &Project,
        request: &CommandRequest,
        queue_bound: Option<u32>,
    ) -> Explanation {
        self.intake.explain(who, project, request, queue_bound).await
    }

    /// Cancels a queued or running command; returns it as it is afterwards.
    pub async fn cancel(&self, actor: &Actor, cmd: &CommandRecord) -> Result<CommandRecord, CommandError> {
        if cmd.state.is_terminal() {
            return Err(CommandError::AlreadyEnded(cmd.state));
        }
        let cancelled = self
            .events
            .end_queued(
                actor,
                (&cmd.id, &cmd.project),
                CommandState::Cancelled,
                "cancelled while queued",
            )
            .await?;
        if !cancelled {
            if let Some(mut done) = self.runner.stop(&cmd.id, StopReason::Cancelled) {
                let _ = tokio::time::timeout(CANCEL_WAIT, done.wait_for(|d| *d)).await;
            } else if self.store.request_cancel(&cmd.id, now_ms()).await? {
                let command = cmd.id.clone();
                self.notices.publish(Notice::CancelRequested { command });
                self.wait_ended(&cmd.id).await?;
            }
        }
        let current = self.store.get_command(&cmd.id).await?;
        current.ok_or_else(|| CommandError::Store(StoreError::Corrupt("command vanished".into())))
    }

    /// Waits, up to [`CANCEL_WAIT`], for a command running on another replica to end.
    async fn wait_ended(&self, id: &str) -> StoreResult<()> {
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(CANCEL_POLL).await;
            if self.store.get_command(id).await?.is_none_or(|c| c.state.is_terminal()) {
                break;
            }
        }
        Ok(())
    }

    /// Commands running on this replica.
    pub fn running_count(&self) -> usize {
        self.runner.count()
    }

    /// The policy chains commands and other requests pass through.
    pub fn policies(&self) -> &Policies {
        self.intake.policies()
    }

    /// Stops claiming commands, lets running ones finish within `grace`, then interrupts the rest.
    pub async fn shutdown(&self, grace: Duration) {
        self.queue.stop_claiming().await;
        self.runner.drain(grace).await;
    }

    /// Whether new commands are accepted (false while shutting down).
    pub fn is_accepting(&self) -> bool {
        self.queue.is_claiming()
    }

    /// Dispatches every project with queued commands every `every`, in case a wake-up was lost.
    pub fn spawn_queue_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        self.queue.spawn_sweeper(every)
    }
}
