//! Circuit breaker on Kubernetes API-server calls: after `threshold` consecutive failures it
//! opens and refuses calls at once; after `open_for` one probe call may go through (half-open);
//! a success closes it, a failure opens it again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge};
use serde::Serialize;

/// The breaker's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Calls go through.
    Closed,
    /// One probe call is allowed (or in flight).
    HalfOpen,
    /// Calls are refused until the probe time.
    Open,
}

impl Position {
    fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// What `/ready` shows of the breaker.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerView {
    /// Position.
    pub state: Position,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// The last failure, if the breaker is not closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

struct State {
    position: Position,
    failures: u32,
    open_until: Instant,
    probe_in_flight: bool,
    last_error: Option<String>,
}

impl State {
    /// Open and not yet due for a probe, or half-open with the probe still out.
    fn refuses(&self) -> bool {
        match self.position {
            Position::Closed => false,
            Position::Open => Instant::now() < self.open_until || self.probe_in_flight,
            Position::HalfOpen => self.probe_in_flight,
        }
    }

    fn refusal(&self) -> String {
        let cause = self.last_error.as_deref().unwrap_or("API server calls failed");
        format!("Kubernetes API unavailable (circuit breaker open): {cause}")
    }
}

/// The breaker itself; cheap to clone.
#[derive(Clone)]
pub struct Breaker {
    state: Arc<Mutex<State>>,
    threshold: u32,
    open_for: Duration,
    gauge: IntGauge,
    calls: IntCounterVec,
}

/// Permission for one call; dropping it unrecorded frees the probe slot.
pub struct Permit {
    breaker: Breaker,
    probe: bool,
}

impl Permit {
    /// Whether this is the half-open breaker's one probe call.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.lock().probe_in_flight = false;
        }
    }
}

impl Breaker {
    /// A closed breaker reporting to the given metrics.
    pub fn new(threshold: u32, open_for: Duration, gauge: IntGauge, calls: IntCounterVec) -> Self {
        gauge.set(0);
        let state = State {
            position: Position::Closed,
            failures: 0,
            open_until: Instant::now(),
            probe_in_flight: false,
            last_error: None,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            threshold,
            open_for,
            gauge,
            calls,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_position(&self, state: &mut State, position: Position) {
        state.position = position;
        self.gauge.set(position.gauge());
    }

    /// Asks to make a call; refused (with the reason) while open, or while the half-open probe
    /// is in flight.
    pub fn admit(&self) -> Result<Permit, String> {
        let mut state = self.lock();
        if state.refuses() {
            self.calls.with_label_values(&["refused"]).inc();
            return Err(state.refusal());
        }
        let probe = state.position != Position::Closed;
        if probe {
            self.set_position(&mut state, Position::HalfOpen);
            state.probe_in_flight = true;
        }
        Ok(Permit {
            breaker: self.clone(),
            probe,
        })
    }

    /// Whether a call would be admitted now, without taking the probe slot.
    pub fn check(&self) -> Result<(), String> {
        let state = self.lock();
        match state.refuses() {
            false => Ok(()),
            true => Err(state.refusal()),
        }
    }

    /// Records a call's outcome (with or without a permit: watch streams report too).
    pub fn record(&self, outcome: Result<(), String>) {
        if outcome.is_ok() {
            self.calls.with_label_values(&["ok"]).inc();
        }
        self.observe(outcome);
    }

    /// Records that the API server answered something other than a call (a watch event): it
    /// closes the breaker like a successful call, without counting as one.
    pub fn reachable(&self) {
        self.observe(Ok(()));
    }

    fn observe(&self, outcome: Result<(), String>) {
        let mut state = self.lock();
        match outcome {
            Ok(()) => {
                if state.position != Position::Closed {
                    tracing::info!("Kubernetes API reachable again; circuit breaker closed");
                }
                state.failures = 0;
                state.last_error = None;
                self.set_position(&mut state, Position::Closed);
            }
            Err(error) => {
                self.calls.with_label_values(&["failed"]).inc();
                state.failures = state.failures.saturating_add(1);
                let reopen = state.position == Position::HalfOpen
                    || (state.position == Position::Closed && state.failures >= self.threshold);
                if reopen {
                    tracing::warn!(failures = state.failures, error = %error, "Kubernetes API failing; circuit breaker open");
                    state.open_until = Instant::now() + self.open_for;
                    self.set_position(&mut state, Position::Open);
                }
                state.last_error = Some(error);
            }
        }
    }

    /// Records the outcome of the call a permit was taken for.
    pub fn finish(&self, permit: Permit, outcome: Result<(), String>) {
        self.record(outcome);
        drop(permit);
    }

    /// The current position, for `/ready`.
    pub fn view(&self) -> BreakerView {
        let state = self.lock();
        BreakerView {
            state: state.position,
            consecutive_failures: state.failures,
            last_error: state.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_for: Duration) -> Breaker {
        let gauge = IntGauge::new("g", "g").unwrap();
        let calls = IntCounterVec::new(prometheus::Opts::new("c", "c"), &["outcome"]).unwrap();
        Breaker::new(threshold, open_for, gauge, calls)
    }

    fn fail(b: &Breaker) {
        b.record(Err("connection refused".into()));
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, Duration::from_secs(60));
        fail(&b);
        fail(&b);
        b.record(Ok(()));
        fail(&b);
        fail(&b);
        assert!(b.admit().is_ok());
        fail(&b);
        let refusal = b.admit().err().unwrap();
        assert!(refusal.contains("circuit breaker open") && refusal.contains("connection refused"));
        assert_eq!(b.view().state, Position::Open);
        assert_eq!(b.gauge.get(), 2);
    }

    #[test]
    fn a_watch_event_closes_the_breaker_without_counting_as_a_call() {
        let b = breaker(1, Duration::from_secs(60));
        fail(&b);
        assert_eq!(b.view().state, Position::Open);
        b.reachable();
        assert_eq!(b.view().state, Position::Closed);
        assert!(b.admit().is_ok());
        assert_eq!(b.calls.with_label_values(&["ok"]).get(), 0);
        assert_eq!(b.calls.with_label_values(&["failed"]).get(), 1);
    }

    #[test]
    fn half_open_admits_one_probe_and_closes_on_success() {
        let b = breaker(1, Duration::from_millis(20));
        fail(&b);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.admit().unwrap();
        assert_eq!(b.view().state, Position::HalfOpen);
        assert!(b.admit().is_err(), "only one probe at a time");
        b.finish(probe, Ok(()));
        assert_eq!(b.view().state, Position::Closed);
        assert!(b.admit().is_ok());
    }

    #[test]
    fn a_failed_probe_opens_again_and_an_abandoned_one_frees_the_slot() {
        let b = breaker(1, Duration::from_millis(20));
        fail(&b);
        std::thread::sleep(Duration::from_millis(30));
        drop(b.admit().unwrap());
        let probe = b.admit().unwrap();
        b.finish(probe, Err("still down".into()));
        assert_eq!(b.view().state, Position::Open);
        assert!(b.admit().err().unwrap().contains("still down"));
    }
}
