//! The runner: executes the commands this replica claimed, each in a task of its own. It starts
//! the process, streams its output, enforces its timeout and cancellation (killing the whole
//! process group), records exactly one terminal state, and drains on shutdown.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::claude::RunSummary;
use super::claude::hooks::{HookRuns, Registration, TOKEN_ENV};
use super::events::Events;
use super::output::{OutageBound, OutputWriter};
use super::{Actor, CommandSpec, CommandsConfig, state_change};
use crate::exec::{ExecBackend, Execution, PendingKill};
use crate::projects::Project;
use crate::store::{CommandRecord, CommandState, Fault, Store, Transition};

/// Why a running command is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopReason {
    Cancelled,
    Interrupted,
}

struct RunningCommand {
    /// The replica id it was claimed under.
    owner: String,
    stop: watch::Sender<Option<StopReason>>,
    done: watch::Receiver<bool>,
}

/// Executes claimed commands.
#[derive(Clone)]
pub(super) struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    events: Events,
    store: Arc<dyn Store>,
    backend: Arc<dyn ExecBackend>,
    config: Arc<CommandsConfig>,
    inherited_env: BTreeMap<String, String>,
    running: Mutex<HashMap<String, RunningCommand>>,
    /// The credentials of this replica's `claude` runs.
    hooks: Arc<HookRuns>,
    tasks: TaskTracker,
    draining: AtomicBool,
}

/// How a run ended.
struct Ending {
    state: CommandState,
    exit_code: Option<i32>,
    reason: Option<String>,
    /// A kill the backend could not confirm yet; the reason says so until it is.
    pending_kill: Option<PendingKill>,
}

impl Ending {
    fn new(state: CommandState, exit_code: Option<i32>, reason: Option<String>) -> Self {
        Self {
            state,
            exit_code,
            reason,
            pending_kill: None,
        }
    }

    /// Notes a kill that is not confirmed in the reason.
    fn with_pending_kill(mut self, pending: Option<PendingKill>) -> Self {
        if let Some(pending) = &pending {
            let reason = self.reason.unwrap_or_else(|| self.state.as_str().to_owned());
            self.reason = Some(format!("{reason}; {}", pending.reason));
        }
        self.pending_kill = pending;
        self
    }
}

/// What woke the runner up.
enum Wake {
    Exited(std::io::Result<crate::exec::ExitOutcome>),
    TimedOut,
    /// It wrote no output for the project's idle timeout.
    Idle,
    Stopped(Option<StopReason>),
    /// Its output could not be stored (a storage outage past its bound).
    OutputLost,
}

/// Tool decisions waiting to join a run's output stream.
const DECISION_BACKLOG: usize = 64;

/// First and longest wait between attempts to record a command's end during an outage.
const END_RETRY_MIN: Duration = Duration::from_millis(200);
const END_RETRY_MAX: Duration = Duration::from_secs(5);

impl Runner {
    pub(super) fn new(
        events: Events,
        store: Arc<dyn Store>,
        backend: Arc<dyn ExecBackend>,
        config: Arc<CommandsConfig>,
        hooks: Arc<HookRuns>,
    ) -> Self {
        let inherited_env = config
            .inherit_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
            .collect();
        let inner = Inner {
            events,
            store,
            backend,
            config,
            inherited_env,
            running: Mutex::default(),
            hooks,
            tasks: TaskTracker::new(),
            draining: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningCommand>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a command claimed under `owner` in a task of its own; `then` runs once its end is
    /// recorded and its slot freed.
    pub(super) fn spawn(
        &self,
        project: Arc<Project>,
        cmd: CommandRecord,
        owner: String,
        then: impl Future<Output = ()> + Send + 'static,
    ) {
        let (stop, stop_rx) = watch::channel(None);
        let (done_tx, done) = watch::channel(false);
        self.running()
            .insert(cmd.id.clone(), RunningCommand { owner, stop, done });
        let this = self.clone();
        self.inner.tasks.spawn(async move {
            this.run(project, cmd, stop_rx).await;
            let _ = done_tx.send(true);
            then.await;
        });
    }

    /// Asks a command running here to stop; what to wait on for its end, if it runs here.
    pub(super) fn stop(&self, id: &str, reason: StopReason) -> Option<watch::Receiver<bool>> {
        let running = self.running();
        let cmd = running.get(id)?;
        let _ = cmd.stop.send(Some(reason));
        Some(cmd.done.clone())
    }

    /// Interrupts every command claimed under `owner` (a replica id this process lost); how many.
    pub(super) fn stop_owned_by(&self, owner: &str) -> usize {
        let ids: Vec<String> = self
            .running()
            .iter()
            .filter(|(_, running)| running.owner == owner)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.stop(id, StopReason::Interrupted);
        }
        ids.len()
    }

    /// Commands running here.
    pub(super) fn count(&self) -> usize {
        self.running().len()
    }

    /// Lets running commands finish within `grace`, then interrupts the rest and waits for them.
    pub(super) async fn drain(&self, grace: Duration) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            let ids: Vec<String> = self.running().keys().cloned().collect();
            tracing::warn!(count = ids.len(), "grace period over; interrupting running commands");
            for id in ids {
                self.stop(&id, StopReason::Interrupted);
            }
            self.inner.tasks.wait().await;
        }
    }

    async fn run(&self, project: Arc<Project>, cmd: CommandRecord, stop: watch::Receiver<Option<StopReason>>) {
        let pod = project.placement.pod.as_deref();
        let backend = if pod.is_some() { "kubernetes" } else { "local" };
        let span = self.inner.events.spans().started(&cmd.id, backend, pod);
        let ending = self.execute(&project, &cmd, stop).instrument(span.clone()).await;
        span.record("rdev.state", ending.state.as_str());
        span.record("rdev.exit_code", ending.exit_code);
        let change = state_change(
            &Actor::default(),
            (&cmd.id, &cmd.project),
            &[CommandState::Running],
            ending.state,
            ending.exit_code,
            ending.reason.as_deref(),
        );
        self.record_end(&change).await;
        tracing::info!(command_id = %cmd.id, state = %ending.state, exit_code = ending.exit_code, "command ended");
        if let Some(pending) = ending.pending_kill {
            let ended = (cmd.id.clone(), ending.state, change.at, ending.reason);
            tokio::spawn(self.clone().record_kill_confirmed(ended, pending));
        }
        self.running().remove(&cmd.id);
        self.inner.events.slot_freed(&cmd.project);
    }

    /// Records the end of a command, waiting out a storage outage: a command whose end is not
    /// recorded would stay `running` until the next start. Gives up only when the gateway shuts
    /// down (the next start then marks the command interrupted), or on a fault that retrying
    /// cannot mend; its live streams end either way.
    async fn record_end(&self, change: &Transition<'_>) {
        let mut backoff = END_RETRY_MIN;
        loop {
            match self.inner.events.change_state(change).await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(command_id = %change.id, "the command was no longer in the state its end was recorded from");
                    self.inner.events.end_streams_unrecorded(change);
                    return;
                }
                Err(e) if e.fault() == Fault::Unavailable && !self.inner.draining.load(Ordering::SeqCst) => {
                    tracing::warn!(error = %e, command_id = %change.id, "storage unavailable; retrying the end of a command");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(END_RETRY_MAX);
                }
                Err(e) => {
                    tracing::error!(error = %e, command_id = %change.id, "could not record the end of a command");
                    self.inner.events.end_streams_unrecorded(change);
                    return;
                }
            }
        }
    }

    /// For a `claude` run: the hook's credential (in the process's environment, valid until
    /// the registration drops), and where its tool decisions arrive.
    async fn claude_hook(
        &self,
        project: &Arc<Project>,
        cmd: &CommandRecord,
        env: &mut BTreeMap<String, String>,
    ) -> Option<(Registration, mpsc::Receiver<String>)> {
        if cmd.kind != "claude" {
            return None;
        }
        // Read once here rather than on every tool call: the sanitizers judge the agent's `Bash`
        // calls with the scopes the command was run with (none if the key cannot be read).
        let scopes = match self.inner.store.get_key(&cmd.key_id).await {
            Ok(key) => key.map(|k| k.scopes).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(command_id = %cmd.id, error = %e, "the submitter's scopes could not be read; tool calls are judged without them");
                Vec::new()
            }
        };
        let (tx, rx) = mpsc::channel(DECISION_BACKLOG);
        let run = (project.clone(), cmd.key_id.as_str(), scopes);
        let (registration, token) = self.inner.hooks.register(&cmd.id, run, tx);
        env.insert(TOKEN_ENV.to_owned(), token);
        Some((registration, rx))
    }

    /// Keeps what a `claude` run reported on its command (the end is recorded either way).
    async fn record_summary(&self, id: &str, summary: &RunSummary) {
        let json = serde_json::to_string(summary).unwrap_or_default();
        if let Err(e) = self
            .inner
            .store
            .set_run_summary(id, summary.session_id.as_deref(), &json)
            .await
        {
            tracing::warn!(error = %e, command_id = %id, "could not record the summary of a claude run");
        }
    }

    async fn execute(
        &self,
        project: &Arc<Project>,
        cmd: &CommandRecord,
        mut stop: watch::Receiver<Option<StopReason>>,
    ) -> Ending {
        let spec: CommandSpec = match serde_json::from_str(&cmd.spec) {
            Ok(spec) => spec,
            Err(e) => return Ending::new(CommandState::Failed, None, Some(format!("unreadable command: {e}"))),
        };
        let mut invocation = spec.invocation(
            &cmd.id,
            (&self.inner.config, &project.settings),
            &self.inner.inherited_env,
        );
        let hook = self.claude_hook(project, cmd, &mut invocation.env).await;
        let mut exec = match self.inner.backend.start(project, &invocation).await {
            Ok(exec) => exec,
            Err(e) => return Ending::new(CommandState::Failed, None, Some(e.to_string())),
        };
        let settings = &*self.inner.config;
        let bound = OutageBound {
            time: Duration::from_secs(settings.output_outage_secs),
            bytes: settings.output_outage_bytes,
        };
        let mut writer = OutputWriter::new(
            self.inner.store.clone(),
            self.inner.events.output_publisher(),
            &cmd.id,
            settings.max_output_bytes,
            bound,
        );
        let (registration, decisions) = hook.unzip();
        if let Some(decisions) = decisions {
            writer = writer.for_claude(decisions);
        }
        let lost = writer.lost();
        let activity = writer.activity();
        // Output flows before the process group is recorded: the first byte never waits on that write.
        let output = tokio::spawn(writer.run(exec.take_output()));
        let runner = exec
            .runner()
            .unwrap_or_else(|| self.inner.backend.identity().to_owned());
        if let Some(pgid) = exec.process_group()
            && let Err(e) = self.inner.store.set_process_group(&cmd.id, &runner, pgid).await
        {
            tracing::warn!(error = %e, command_id = %cmd.id, "could not record the process group");
        }
        let timeout = Duration::from_secs(cmd.timeout_secs.max(1) as u64);
        let idle = Duration::from_secs(project.settings.idle_timeout_secs);
        let wake = tokio::select! {
            status = exec.wait() => Wake::Exited(status),
            () = tokio::time::sleep(timeout) => Wake::TimedOut,
            () = silent_for(idle, activity), if !idle.is_zero() => Wake::Idle,
            reason = stop.wait_for(Option::is_some) => Wake::Stopped(reason.ok().and_then(|r| *r)),
            () = lost.cancelled() => Wake::OutputLost,
        };
        let ending = match wake {
            Wake::Exited(Ok(outcome)) if outcome.code == 0 => Ending::new(CommandState::Succeeded, Some(0), None),
            Wake::Exited(Ok(outcome)) => Ending::new(CommandState::Failed, Some(outcome.code), None),
            Wake::Exited(Err(e)) => Ending::new(CommandState::Failed, None, Some(e.to_string())),
            Wake::TimedOut => {
                let code = kill(exec.as_mut()).await;
                Ending::new(
                    CommandState::TimedOut,
                    code,
                    Some(format!("timed out after {}s", timeout.as_secs())),
                )
            }
            Wake::Idle => {
                let code = kill(exec.as_mut()).await;
                Ending::new(
                    CommandState::TimedOut,
                    code,
                    Some(format!(
                        "no output for {}s (the project's idle timeout); the process was killed",
                        idle.as_secs()
                    )),
                )
            }
            Wake::Stopped(Some(StopReason::Interrupted)) => {
                let code = kill(exec.as_mut()).await;
                Ending::new(CommandState::Interrupted, code, Some("the gateway shut down".into()))
            }
            Wake::Stopped(_) => {
                let code = kill(exec.as_mut()).await;
                Ending::new(CommandState::Cancelled, code, Some("cancelled".into()))
            }
            // The reason comes from the output task below.
            Wake::OutputLost => Ending::new(CommandState::Interrupted, kill(exec.as_mut()).await, None),
        };
        exec.kill().await;
        drop(registration);
        let pending = exec.unconfirmed_kill();
        let ending = match output.await {
            Ok(Ok(summary)) => {
                if let Some(summary) = summary {
                    self.record_summary(&cmd.id, &summary).await;
                }
                ending
            }
            Ok(Err(lost)) => Ending::new(CommandState::Interrupted, ending.exit_code, Some(lost.to_string())),
            Err(e) => Ending::new(
                CommandState::Failed,
                ending.exit_code,
                Some(format!("output task failed: {e}")),
            ),
        };
        ending.with_pending_kill(pending)
    }

    /// Once a kill the record called unconfirmed is confirmed, says so in the command's reason
    /// (state, exit code and end time unchanged) with a `command.kill_confirmed` audit event.
    async fn record_kill_confirmed(self, ended: (String, CommandState, i64, Option<String>), pending: PendingKill) {
        let (id, state, at, reason) = ended;
        let note = pending.confirmed.await;
        let unconfirmed = format!("; {}", pending.reason);
        let before = reason.as_deref().unwrap_or_default();
        let reason = format!("{}; {note}", before.strip_suffix(&unconfirmed).unwrap_or(before));
        let from = [state];
        let change = Transition {
            id: &id,
            from: &from,
            to: state,
            exit_code: None,
            reason: Some(&reason),
            at,
            audit: Actor::default().audit("command.kill_confirmed", &id, state.as_str(), Some(note.clone())),
        };
        self.record_end(&change).await;
        tracing::info!(command_id = %id, %note, "kill confirmed");
    }
}

/// Returns once `idle` passes without a change of `activity`. Once the output has closed, none
/// can come: the process is silent until it exits.
async fn silent_for(idle: Duration, mut activity: watch::Receiver<u64>) {
    loop {
        match tokio::time::timeout(idle, activity.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return tokio::time::sleep(idle).await,
            Err(_) => return,
        }
    }
}

/// Kills the process group and reaps the process; its exit status if it could be read.
async fn kill(exec: &mut dyn Execution) -> Option<i32> {
    exec.kill().await;
    exec.wait().await.ok().map(|o| o.code)
}
