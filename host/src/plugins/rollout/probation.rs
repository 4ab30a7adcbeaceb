//! Probation of a newly swapped version: for `watch_secs` after the swap its calls are counted,
//! window by window, against the rollback budget; the call that breaks the budget is the moment
//! of the rollback (no ticker to wait for).

use std::time::{Duration, Instant};

use super::settings::RollbackBudget;

/// How a watched call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// It answered.
    Answered,
    /// It trapped, ran out of memory or fuel, or returned something invalid.
    Trapped,
    /// It hit its deadline (or stayed blocked past its wall-clock limit).
    TimedOut,
}

/// What the probation says after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// Within budget.
    Fine,
    /// The budget broke: roll back, for this reason.
    Breach(String),
    /// The probation is over: the version is trusted now.
    Over,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    calls: u64,
    traps: u64,
    timeouts: u64,
    slow: u64,
}

/// One version's probation.
#[derive(Debug)]
pub struct Probation {
    digest: String,
    budget: RollbackBudget,
    started: Instant,
    window_started: Instant,
    counts: Counts,
}

impl Probation {
    /// The probation of the version `digest`, or none when the budget turns rollback off.
    pub fn start(digest: &str, budget: &RollbackBudget) -> Option<Self> {
        let now = Instant::now();
        (budget.watch_secs > 0).then(|| Self {
            digest: digest.to_owned(),
            budget: budget.clone(),
            started: now,
            window_started: now,
            counts: Counts::default(),
        })
    }

    /// The version on probation.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Counts one call of the version.
    pub fn record(&mut self, end: CallEnd, took: Duration) -> Watched {
        let now = now_or(self.started);
        if now.duration_since(self.started) >= Duration::from_secs(self.budget.watch_secs) {
            return Watched::Over;
        }
        if now.duration_since(self.window_started) >= Duration::from_secs(self.budget.window_secs) {
            self.window_started = now;
            self.counts = Counts::default();
        }
        let c = &mut self.counts;
        c.calls += 1;
        match end {
            CallEnd::Answered => {}
            CallEnd::Trapped => c.traps += 1,
            CallEnd::TimedOut => c.timeouts += 1,
        }
        if self
            .budget
            .max_p99_ms
            .is_some_and(|ms| took > Duration::from_millis(ms))
        {
            c.slow += 1;
        }
        self.breach().map_or(Watched::Fine, Watched::Breach)
    }

    fn breach(&self) -> Option<String> {
        let (b, c) = (&self.budget, self.counts);
        let window = b.window_secs;
        if c.traps > b.max_traps {
            return Some(format!("{} traps in {window} s (budget {})", c.traps, b.max_traps));
        }
        if c.timeouts > b.max_deadline_hits {
            return Some(format!(
                "{} deadline hits in {window} s (budget {})",
                c.timeouts, b.max_deadline_hits
            ));
        }
        let failures = c.traps + c.timeouts;
        if failures > b.max_failures {
            return Some(format!(
                "{failures} failed calls, each refused fail-closed, in {window} s (budget {})",
                b.max_failures
            ));
        }
        // The p99 is above the limit exactly when more than 1 % of the calls are.
        if let Some(ms) = b.max_p99_ms
            && c.calls >= b.min_calls_for_p99
            && c.slow * 100 > c.calls
        {
            return Some(format!(
                "p99 latency above {ms} ms over {} calls in {window} s",
                c.calls
            ));
        }
        None
    }
}

/// Now, but never before `floor` (`Instant` is monotonic; this only keeps the arithmetic total).
fn now_or(floor: Instant) -> Instant {
    Instant::now().max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> RollbackBudget {
        RollbackBudget {
            watch_secs: 600,
            window_secs: 600,
            max_traps: 2,
            max_deadline_hits: 5,
            max_failures: 5,
            max_p99_ms: Some(10),
            min_calls_for_p99: 100,
        }
    }

    #[test]
    fn the_call_that_breaks_a_budget_is_a_breach() {
        let mut p = Probation::start("d", &budget()).unwrap();
        let fast = Duration::from_millis(1);
        assert_eq!(p.record(CallEnd::Trapped, fast), Watched::Fine);
        assert_eq!(p.record(CallEnd::Answered, fast), Watched::Fine);
        assert_eq!(p.record(CallEnd::Trapped, fast), Watched::Fine);
        let Watched::Breach(why) = p.record(CallEnd::Trapped, fast) else {
            panic!("a third trap breaks a budget of two");
        };
        assert!(why.contains("3 traps"), "{why}");
    }

    #[test]
    fn failures_of_both_kinds_add_up() {
        let mut p = Probation::start(
            "d",
            &RollbackBudget {
                max_failures: 3,
                ..budget()
            },
        )
        .unwrap();
        let fast = Duration::from_millis(1);
        for end in [CallEnd::Trapped, CallEnd::TimedOut, CallEnd::TimedOut] {
            assert_eq!(p.record(end, fast), Watched::Fine);
        }
        assert!(matches!(p.record(CallEnd::TimedOut, fast), Watched::Breach(why) if why.contains("4 failed")));
    }

    #[test]
    fn a_p99_above_the_limit_is_a_breach_once_enough_calls_are_seen() {
        let mut p = Probation::start("d", &budget()).unwrap();
        let (fast, slow) = (Duration::from_millis(1), Duration::from_millis(50));
        assert_eq!(p.record(CallEnd::Answered, slow), Watched::Fine);
        assert_eq!(p.record(CallEnd::Answered, slow), Watched::Fine);
        for _ in 0..97 {
            assert_eq!(p.record(CallEnd::Answered, fast), Watched::Fine);
        }
        assert!(matches!(p.record(CallEnd::Answered, fast), Watched::Breach(why) if why.contains("p99")));
    }

    #[test]
    fn no_watch_means_no_probation() {
        let off = RollbackBudget {
            watch_secs: 0,
            ..budget()
        };
        assert!(Probation::start("d", &off).is_none());
    }
}
