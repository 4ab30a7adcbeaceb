//! A shadow candidate: a version that judges sampled calls beside the serving one and is never
//! enforced. Its calls run on one background thread at idle CPU priority, at most
//! `shadow_concurrency` at a time; a sampled call that finds no free shadow slot is dropped and
//! counted, so the candidate can cost the request path nothing but a copy of the input.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::diff::{Comparison, Diff, DiffReport, Disagreement, Outcome};
use super::gate;
use super::settings::RolloutSettings;
use crate::plugins::runtime::CallError;
use crate::plugins::version::Version;

/// Where a candidate came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CandidateSource {
    /// The manifest's `shadow_file`.
    File {
        /// The file.
        path: String,
    },
    /// Uploaded with `PUT /v1/plugins/{name}/shadow`.
    Upload,
}

/// A candidate version in shadow.
pub struct Shadow {
    /// The loaded, checked candidate.
    pub version: Arc<Version>,
    /// Its component, written in place of the serving file when it is promoted.
    pub wasm: Arc<Vec<u8>>,
    /// Its signature file's content, if it came with one.
    pub signature: Option<Vec<u8>>,
    /// Where it came from.
    pub source: CandidateSource,
    settings: RolloutSettings,
    seen: AtomicU64,
    slots: Arc<Semaphore>,
    diff: Mutex<Diff>,
    gate_held_since: Mutex<Option<Instant>>,
}

/// What a shadow call compares: the serving version's outcome and duration, and how to show
/// the input if they disagree (built only then).
pub struct Served {
    /// The serving version's outcome.
    pub outcome: Outcome,
    /// How long it took, in microseconds.
    pub duration_us: u64,
}

/// The candidate as `GET /v1/plugins/{name}/shadow` reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShadowReport {
    /// SHA-256 of the candidate's file.
    pub digest: String,
    /// Where it came from.
    pub source: CandidateSource,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
    /// Share of calls it judges.
    pub sample_rate: f64,
    /// The decision diff since it loaded.
    pub diff: DiffReport,
    /// Whether a promotion would pass the gate now.
    pub gate_holds: bool,
    /// Why not, if it would not.
    pub gate_failures: Vec<String>,
}

impl Shadow {
    /// A candidate from `version`.
    pub fn new(version: Version, wasm: Arc<Vec<u8>>, signature: Option<Vec<u8>>, source: CandidateSource) -> Self {
        let settings = version.manifest.rollout.clone();
        Self {
            slots: Arc::new(Semaphore::new(settings.shadow_concurrency)),
            version: Arc::new(version.into_shadow()),
            wasm,
            signature,
            source,
            settings,
            seen: AtomicU64::new(0),
            diff: Mutex::new(Diff::default()),
            gate_held_since: Mutex::new(None),
        }
    }

    /// The digest of the candidate.
    pub fn digest(&self) -> &str {
        &self.version.digest
    }

    /// Whether this call is sampled: every call at rate 1, evenly spread below.
    fn sampled(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        let rate = self.settings.sample_rate;
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }

    /// Judges a sampled call in shadow on `runner`: `call` runs the candidate, `input` shows
    /// the input if the two versions disagree. Never waits and never fails the caller.
    pub fn judge<C, F>(
        self: &Arc<Self>,
        runner: &ShadowRunner,
        served: Served,
        call: C,
        input: impl FnOnce() -> serde_json::Value + Send + 'static,
        counted: impl FnOnce(Comparison) + Send + 'static,
    ) where
        C: FnOnce(Arc<Version>) -> F + Send + 'static,
        F: Future<Output = Result<Outcome, CallError>> + Send + 'static,
    {
        if !self.sampled() {
            return;
        }
        if matches!(served.outcome, Outcome::Failed { .. } | Outcome::TimedOut { .. }) {
            self.lock().serving_failed();
            return;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.lock().drop_one();
            return;
        };
        let shadow = self.clone();
        runner.spawn(async move {
            let started = Instant::now();
            let result = call(shadow.version.clone()).await;
            let duration_us = started.elapsed().as_micros() as u64;
            drop(permit);
            let candidate = match result {
                Ok(outcome) => outcome,
                // Waiting for CPU or a call slot is the shadow's low priority, not the candidate.
                Err(CallError::Busy(_) | CallError::Blocked(_)) => return shadow.lock().drop_one(),
                Err(e @ CallError::Deadline(_)) => Outcome::TimedOut { error: e.to_string() },
                Err(e) => Outcome::Failed { error: e.to_string() },
            };
            let comparison = Comparison::of(&served.outcome, &candidate);
            let sample = (comparison != Comparison::Agree).then(|| Disagreement {
                at: crate::time::to_rfc3339(crate::time::now_ms()),
                input: input(),
                serving: served.outcome.redacted(),
                candidate: candidate.redacted(),
            });
            shadow
                .lock()
                .record(served.duration_us, duration_us, comparison, sample);
            counted(comparison);
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Diff> {
        self.diff.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the gate refuses a promotion now (empty: it holds).
    pub fn gate_failures(&self) -> Vec<String> {
        gate::failures(&self.settings.gate, &self.lock())
    }

    /// Whether the gate holds now and has held for the configured auto-promotion period
    /// (checked by the manager's ticker, which also keeps the period's start).
    pub fn due_for_auto_promotion(&self) -> bool {
        let Some(secs) = self.settings.gate.auto_promote_after_secs else {
            return false;
        };
        let holds = self.gate_failures().is_empty();
        let mut since = self.gate_held_since.lock().unwrap_or_else(|e| e.into_inner());
        match (holds, *since) {
            (false, _) => {
                *since = None;
                false
            }
            (true, None) => {
                *since = Some(Instant::now());
                false
            }
            (true, Some(start)) => start.elapsed().as_secs() >= secs,
        }
    }

    /// The report.
    pub fn report(&self) -> ShadowReport {
        let gate_failures = self.gate_failures();
        ShadowReport {
            digest: self.version.digest.clone(),
            source: self.source.clone(),
            loaded_at: crate::time::to_rfc3339(self.version.loaded_at),
            sample_rate: self.settings.sample_rate,
            diff: self.lock().report(),
            gate_holds: gate_failures.is_empty(),
            gate_failures,
        }
    }
}

/// A shadow call handed to the shadow thread.
type Job = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// How often the shadow thread picks up the calls handed to it: handing one over is a push onto
/// a queue, so the request path never pays for waking another thread.
const PICKUP_TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The thread shadow calls run on: one current-thread runtime at idle CPU priority, so that a
/// candidate only ever uses CPU the request path leaves idle. It stops when dropped.
pub struct ShadowRunner {
    queue: Arc<Mutex<Vec<Job>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ShadowRunner {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Self> {
        let queue: Arc<Mutex<Vec<Job>>> = Arc::default();
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let jobs = queue.clone();
        std::thread::Builder::new().name("rdev-shadow".into()).spawn(move || {
            lower_priority();
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let _ = ready.send(Ok(()));
            runtime.block_on(pick_up(jobs, stopped));
        })?;
        started
            .recv()
            .map_err(|_| std::io::Error::other("the shadow thread ended at once"))??;
        Ok(Self { queue, _stop: stop })
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::pin(task));
    }
}

/// Runs the calls handed over, every tick, until the runner is dropped.
async fn pick_up(queue: Arc<Mutex<Vec<Job>>>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(PICKUP_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {
                let jobs = std::mem::take(&mut *queue.lock().unwrap_or_else(|e| e.into_inner()));
                for job in jobs {
                    tokio::spawn(job);
                }
            }
        }
    }
}

/// Moves the calling thread to Linux's idle scheduling class (it runs only on CPU nothing else
/// wants); where that is refused, it keeps the normal class and says so.
#[allow(unsafe_code)]
fn lower_priority() {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` with pid 0 changes only the calling thread's policy, and
    // `param` is a valid, initialised struct that outlives the call.
    let done = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param) };
    if done != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "shadow calls run at normal CPU priority");
    }
}
