//! The promotion gate: what a candidate's diff must show before it may replace the serving
//! version.

use super::diff::Diff;
use super::settings::Gate;

/// Why `diff` does not pass `gate` (empty: it passes).
pub fn failures(gate: &Gate, diff: &Diff) -> Vec<String> {
    let mut why = Vec::new();
    let calls = diff.calls();
    if calls < gate.min_calls {
        why.push(format!(
            "the candidate has judged {calls} calls; the gate needs {}",
            gate.min_calls
        ));
    }
    let errors = diff.candidate_errors();
    if errors > gate.max_candidate_errors {
        why.push(format!(
            "the candidate failed (trap or deadline) on {errors} calls; the gate allows {}",
            gate.max_candidate_errors
        ));
    }
    if calls > 0 {
        let rate = diff.disagreements() as f64 / calls as f64;
        if rate > gate.max_disagreement_rate {
            why.push(format!(
                "the candidate disagreed on {:.2} % of calls; the gate allows {:.2} %",
                rate * 100.0,
                gate.max_disagreement_rate * 100.0
            ));
        }
        let (serving, candidate) = diff.latencies();
        // A floor of 50 µs: below it, percentiles of microsecond calls are scheduling noise.
        let allowed = (serving.p99_us.max(50) as f64 * gate.max_p99_ratio) as u64;
        if candidate.p99_us > allowed {
            why.push(format!(
                "the candidate's p99 is {} µs against the serving version's {} µs; the gate allows {:.1}×",
                candidate.p99_us, serving.p99_us, gate.max_p99_ratio
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::super::diff::{Comparison, Diff};
    use super::*;

    fn diff(agree: u64, disagree: u64, trapped: u64) -> Diff {
        let mut diff = Diff::default();
        for _ in 0..agree {
            diff.record(100, 100, Comparison::Agree, None);
        }
        for _ in 0..disagree {
            diff.record(100, 100, Comparison::AllowToDeny, None);
        }
        for _ in 0..trapped {
            diff.record(100, 100, Comparison::CandidateTrapped, None);
        }
        diff
    }

    #[test]
    fn the_gate_needs_calls_few_disagreements_no_errors_and_a_close_p99() {
        let gate = Gate {
            min_calls: 10,
            max_disagreement_rate: 0.2,
            ..Gate::default()
        };
        assert_eq!(failures(&gate, &diff(5, 0, 0)).len(), 1, "too few calls");
        assert!(failures(&gate, &diff(9, 1, 0)).is_empty());
        assert!(failures(&gate, &diff(7, 3, 0))[0].contains("disagreed on 30.00 %"));
        assert!(failures(&gate, &diff(10, 0, 1))[0].contains("failed"));
        let mut slow = diff(10, 0, 0);
        for _ in 0..10 {
            slow.record(100, 10_000, Comparison::Agree, None);
        }
        assert!(failures(&gate, &slow)[0].contains("p99"));
    }
}
