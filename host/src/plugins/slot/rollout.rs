//! A slot's rollout: the shadow candidate its calls are also judged by, and after a swap the new
//! version's probation, with the version it replaced kept to roll back to. The call that breaks
//! the probation's budget swaps the old version back in before it returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use super::Slot;
use crate::plugins::rollout::diff::Outcome;
use crate::plugins::rollout::probation::{CallEnd, Probation, Watched};
use crate::plugins::rollout::shadow::{Served, Shadow, ShadowRunner};
use crate::plugins::runtime::CallError;
use crate::plugins::version::Version;

/// What slots share with their manager: the thread shadow calls run on, and where rollbacks are
/// reported (the manager audits them).
#[derive(Clone)]
pub struct SlotHooks {
    /// The shadow thread.
    pub runner: Arc<ShadowRunner>,
    /// Rollbacks, by plugin name.
    pub rollbacks: UnboundedSender<(String, RolledBack)>,
}

/// A rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RolledBack {
    /// The version rolled back (refused until a different file arrives).
    pub digest: String,
    /// The version serving again.
    pub to_digest: String,
    /// The budget it broke.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

#[derive(Default)]
pub(super) struct Rollout {
    previous: Option<Arc<Version>>,
    probation: Option<Probation>,
    pub(super) rolled_back: Option<RolledBack>,
}

impl Rollout {
    /// `new` replaces `old`: it goes on probation, with `old` to roll back to.
    pub(super) fn swapped(&mut self, old: Option<Arc<Version>>, new: &Version) {
        self.probation = old
            .as_ref()
            .and_then(|_| Probation::start(&new.digest, &new.manifest.rollout.rollback));
        self.previous = old;
        self.rolled_back = None;
    }
}

impl Slot {
    pub(super) fn lock_rollout(&self) -> std::sync::MutexGuard<'_, Rollout> {
        self.rollout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The candidate in shadow.
    pub fn shadow(&self) -> Option<Arc<Shadow>> {
        self.shadow.load_full()
    }

    /// Puts a candidate in shadow (replacing any other), or takes it out.
    pub fn set_shadow(&self, shadow: Option<Shadow>) {
        self.shadow.store(shadow.map(Arc::new));
        self.set_shadow_error(None);
    }

    /// Records why the last candidate could not be loaded (`None`: it could).
    pub fn set_shadow_error(&self, error: Option<String>) {
        *self.shadow_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// The digest rolled back from, refused until a different file arrives.
    pub fn refused_digest(&self) -> Option<String> {
        self.lock_rollout().rolled_back.as_ref().map(|r| r.digest.clone())
    }

    /// The serving version's outcome for a shadow comparison.
    pub(super) fn served<T>(
        started: Instant,
        result: &Result<T, CallError>,
        outcome: impl Fn(&T) -> Outcome,
    ) -> Served {
        let outcome = match result {
            Ok(value) => outcome(value),
            Err(e @ (CallError::Deadline(_) | CallError::Blocked(_))) => Outcome::TimedOut { error: e.to_string() },
            Err(e) => Outcome::Failed { error: e.to_string() },
        };
        Served {
            outcome,
            duration_us: started.elapsed().as_micros() as u64,
        }
    }

    /// Has the candidate judge the same input, off the request path.
    pub(super) fn judge_in_shadow<C, F>(
        &self,
        shadow: &Arc<Shadow>,
        served: Served,
        call: C,
        input: impl FnOnce() -> serde_json::Value + Send + 'static,
    ) where
        C: FnOnce(Arc<Version>) -> F + Send + 'static,
        F: std::future::Future<Output = Result<Outcome, CallError>> + Send + 'static,
    {
        let (metrics, name) = (self.metrics.clone(), self.name.clone());
        let counted = move |comparison: crate::plugins::rollout::diff::Comparison| {
            metrics
                .plugin_shadow_calls
                .with_label_values(&[&name, comparison.label()])
                .inc();
        };
        shadow.judge(&self.hooks.runner, served, call, input, counted);
    }

    /// Counts a call of a version on probation, and rolls it back if the call broke its budget.
    pub(super) fn watch<T>(&self, version: &Version, result: &Result<T, CallError>, took: Duration) {
        let end = match result {
            Ok(_) => CallEnd::Answered,
            // An overloaded runtime says nothing about the version.
            Err(CallError::Busy(_)) => return,
            Err(CallError::Deadline(_) | CallError::Blocked(_)) => CallEnd::TimedOut,
            Err(_) => CallEnd::Trapped,
        };
        let mut rollout = self.lock_rollout();
        let Some(probation) = rollout.probation.as_mut() else {
            return;
        };
        // A call that started on an earlier version finishes on it; it is not this one's.
        if probation.digest() != version.digest {
            return;
        }
        match probation.record(end, took) {
            Watched::Fine => {}
            Watched::Over => rollout.probation = None,
            Watched::Breach(reason) => self.roll_back(&mut rollout, reason),
        }
    }

    fn roll_back(&self, rollout: &mut Rollout, reason: String) {
        rollout.probation = None;
        let (Some(previous), Some(bad)) = (rollout.previous.take(), self.active.load_full()) else {
            return;
        };
        self.active.store(Some(previous.clone()));
        let record = RolledBack {
            digest: bad.digest.clone(),
            to_digest: previous.digest.clone(),
            reason,
            at: crate::time::to_rfc3339(crate::time::now_ms()),
        };
        rollout.rolled_back = Some(record.clone());
        self.record_attempt(Some(format!(
            "version {} was rolled back: {}",
            record.digest, record.reason
        )));
        self.metrics.plugin_rollbacks.with_label_values(&[&self.name]).inc();
        tracing::error!(plugin = %self.name, digest = %record.digest, to = %record.to_digest,
            reason = %record.reason, "plugin version broke its budget and was rolled back");
        let _ = self.hooks.rollbacks.send((self.name.clone(), record));
    }
}
