//! A plugin entry's `[plugins.rollout]` table: how a shadow candidate is sampled and bounded,
//! the gate its promotion must pass, and the budget a newly swapped version is watched against.

use serde::{Deserialize, Serialize};

/// How a plugin's versions are rolled out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSettings {
    /// Share of calls the shadow candidate also judges, from 0 to 1.
    pub sample_rate: f64,
    /// Shadow calls in flight at once; a sampled call finding all of them busy is dropped
    /// (counted, never waited for).
    pub shadow_concurrency: usize,
    /// What a promotion requires.
    pub gate: Gate,
    /// What a new version is watched against after a swap.
    pub rollback: RollbackBudget,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self {
            sample_rate: 1.0,
            shadow_concurrency: 8,
            gate: Gate::default(),
            rollback: RollbackBudget::default(),
        }
    }
}

/// The conditions under which a candidate may be promoted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Gate {
    /// Calls the candidate must have judged.
    pub min_calls: u64,
    /// Largest share of those calls on which it may disagree with the serving version.
    pub max_disagreement_rate: f64,
    /// Candidate calls that may have trapped or hit their deadline.
    pub max_candidate_errors: u64,
    /// Largest ratio of the candidate's p99 latency to the serving version's.
    pub max_p99_ratio: f64,
    /// Promote by itself once the gate has held this long (seconds); never when absent.
    pub auto_promote_after_secs: Option<u64>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            min_calls: 100,
            max_disagreement_rate: 0.01,
            max_candidate_errors: 0,
            max_p99_ratio: 3.0,
            auto_promote_after_secs: None,
        }
    }
}

/// The budget a version is watched against after it is swapped in; a breach rolls it back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackBudget {
    /// How long after a swap the new version is watched (seconds); 0 turns rollback off.
    pub watch_secs: u64,
    /// The window the budget counts over (seconds): counts start again each window.
    pub window_secs: u64,
    /// Traps (and memory, fuel or bad-output failures) allowed in one window.
    pub max_traps: u64,
    /// Deadline hits allowed in one window.
    pub max_deadline_hits: u64,
    /// Failed calls of any kind (each one refused its request, fail closed) allowed in one
    /// window.
    pub max_failures: u64,
    /// Largest p99 call latency in a window (milliseconds), judged once the window has
    /// `min_calls_for_p99` calls; not judged when absent.
    pub max_p99_ms: Option<u64>,
    /// Calls a window needs before its p99 is judged.
    pub min_calls_for_p99: u64,
}

impl Default for RollbackBudget {
    fn default() -> Self {
        Self {
            watch_secs: 600,
            window_secs: 60,
            max_traps: 3,
            max_deadline_hits: 5,
            max_failures: 5,
            max_p99_ms: None,
            min_calls_for_p99: 100,
        }
    }
}

impl RolloutSettings {
    /// The problems with these settings, if any.
    pub fn check(&self, plugin: &str) -> Result<(), String> {
        let fail = |what: &str| Err(format!("plugin `{plugin}`: rollout.{what}"));
        if !(0.0..=1.0).contains(&self.sample_rate) || self.sample_rate.is_nan() {
            return fail("sample_rate must be between 0 and 1");
        }
        let most = crate::plugins::runtime::SHADOW_SLOTS;
        if !(1..=most).contains(&self.shadow_concurrency) {
            return fail(&format!("shadow_concurrency must be between 1 and {most}"));
        }
        if !(0.0..=1.0).contains(&self.gate.max_disagreement_rate) {
            return fail("gate.max_disagreement_rate must be between 0 and 1");
        }
        if self.gate.max_p99_ratio.is_nan() || self.gate.max_p99_ratio < 1.0 {
            return fail("gate.max_p99_ratio must be at least 1");
        }
        if self.gate.auto_promote_after_secs == Some(0) {
            return fail("gate.auto_promote_after_secs must be at least 1");
        }
        if self.rollback.window_secs == 0 {
            return fail("rollback.window_secs must be at least 1");
        }
        if self.rollback.max_p99_ms == Some(0) {
            return fail("rollback.max_p99_ms must be at least 1");
        }
        Ok(())
    }
}
