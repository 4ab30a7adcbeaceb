//! The CPU time one plugin call has used: the clock its deadline runs on. A call is an async
//! fiber that yields to the executor every epoch tick; on a busy machine it may then wait for a
//! worker, or the worker for a core, far longer than it runs. Wall-clock time would blame the
//! plugin for that wait; the thread's CPU clock, read around each poll, counts only the time the
//! call actually runs (the plugin's code and the host functions it calls).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// `poll_started` when no poll is in progress.
const IDLE: u64 = u64::MAX;

/// CPU time of one call, shared by its future and its store's epoch callback.
#[derive(Debug)]
pub struct CpuMeter {
    used_ns: AtomicU64,
    poll_started: AtomicU64,
}

impl CpuMeter {
    /// A meter at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            used_ns: AtomicU64::new(0),
            poll_started: AtomicU64::new(IDLE),
        })
    }

    /// CPU time used so far, the poll in progress included. Read it on the thread that polls
    /// the call (the epoch callback runs inside the poll).
    pub fn used(&self) -> Duration {
        let started = self.poll_started.load(Ordering::Relaxed);
        let live = match started {
            IDLE => 0,
            _ => thread_cpu_ns().saturating_sub(started),
        };
        Duration::from_nanos(self.used_ns.load(Ordering::Relaxed).saturating_add(live))
    }

    /// Runs `call`, counting the CPU time of each of its polls.
    pub async fn run<F: Future>(&self, call: F) -> F::Output {
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| {
            let started = thread_cpu_ns();
            self.poll_started.store(started, Ordering::Relaxed);
            let outcome = call.as_mut().poll(cx);
            let spent = thread_cpu_ns().saturating_sub(started);
            self.poll_started.store(IDLE, Ordering::Relaxed);
            self.used_ns.fetch_add(spent, Ordering::Relaxed);
            outcome
        })
        .await
    }
}

/// This thread's CPU time in nanoseconds. Linux always has the clock; should reading it fail,
/// the process-wide CPU clock (which only ever runs faster) keeps deadlines enforced.
fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .or_else(|_| clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID))
        .map_or(0, |t| Duration::from(t).as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(for_at_least: Duration) {
        let start = thread_cpu_ns();
        while thread_cpu_ns() - start < for_at_least.as_nanos() as u64 {
            std::hint::black_box(0u64);
        }
    }

    #[tokio::test]
    async fn counts_the_time_a_call_runs_not_the_time_it_waits() {
        let meter = CpuMeter::new();
        meter
            .run(async {
                spin(Duration::from_millis(30));
                tokio::time::sleep(Duration::from_millis(200)).await;
            })
            .await;
        let used = meter.used();
        assert!(used >= Duration::from_millis(30), "{used:?}");
        assert!(used < Duration::from_millis(150), "the sleep is not CPU time: {used:?}");
    }
}
