//! The decision diff of a shadow candidate: each sampled call's two outcomes compared, counted by
//! kind of disagreement, their latencies, and a bounded sample of the inputs they disagreed on.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::plugins::{FieldError, PluginCommand};

/// Latencies kept per side for the percentiles: the most recent calls.
const LATENCY_WINDOW: usize = 4096;
/// Disagreeing inputs kept per kind: the most recent ones.
const SAMPLES_PER_KIND: usize = 10;

/// What one version decided on one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Outcome {
    /// Let it through.
    Allow,
    /// Refused it.
    Deny {
        /// The reason given.
        reason: String,
    },
    /// Let it through as another command (a sanitizer rewrite).
    Rewrite {
        /// The command it became, env values redacted.
        #[schema(value_type = Object)]
        command: PluginCommand,
    },
    /// Found field errors (a validator).
    Invalid {
        /// The fields.
        errors: Vec<FieldError>,
    },
    /// Failed: trap, memory, fuel or bad output.
    Failed {
        /// What happened.
        error: String,
    },
    /// Hit its deadline.
    TimedOut {
        /// What happened.
        error: String,
    },
}

impl Outcome {
    /// The outcome as a sample shows it: a rewrite's env values and secrets taken out (it is
    /// compared before, whole).
    pub fn redacted(self) -> Self {
        match self {
            Outcome::Rewrite { command } => Outcome::Rewrite {
                command: super::redact::command(&command),
            },
            other => other,
        }
    }

    fn lets_through(&self) -> Option<bool> {
        match self {
            Outcome::Allow | Outcome::Rewrite { .. } => Some(true),
            Outcome::Deny { .. } | Outcome::Invalid { .. } => Some(false),
            Outcome::Failed { .. } | Outcome::TimedOut { .. } => None,
        }
    }
}

/// How a candidate's outcome compares with the serving version's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Same decision.
    Agree,
    /// The serving version let it through, the candidate refused it.
    AllowToDeny,
    /// The serving version refused it, the candidate let it through.
    DenyToAllow,
    /// Both let it through, as different commands.
    DifferentRewrite,
    /// Both refused it, with different field errors.
    DifferentErrors,
    /// The candidate trapped (or ran out of memory or fuel, or returned something invalid).
    CandidateTrapped,
    /// The candidate hit its deadline.
    CandidateTimedOut,
}

impl Comparison {
    /// Of a candidate's outcome against the serving one (which did not fail).
    pub fn of(serving: &Outcome, candidate: &Outcome) -> Self {
        match (serving.lets_through(), candidate) {
            (_, Outcome::Failed { .. }) => Self::CandidateTrapped,
            (_, Outcome::TimedOut { .. }) => Self::CandidateTimedOut,
            _ if serving == candidate => Self::Agree,
            (Some(true), c) if c.lets_through() == Some(false) => Self::AllowToDeny,
            (Some(false), c) if c.lets_through() == Some(true) => Self::DenyToAllow,
            (_, Outcome::Deny { .. }) if matches!(serving, Outcome::Deny { .. }) => Self::Agree,
            (Some(true), _) => Self::DifferentRewrite,
            _ => Self::DifferentErrors,
        }
    }

    /// The label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Agree => "agree",
            Self::AllowToDeny => "allow_to_deny",
            Self::DenyToAllow => "deny_to_allow",
            Self::DifferentRewrite => "different_rewrite",
            Self::DifferentErrors => "different_errors",
            Self::CandidateTrapped => "candidate_trapped",
            Self::CandidateTimedOut => "candidate_timed_out",
        }
    }

    /// Whether the candidate failed rather than decided.
    pub fn is_candidate_error(self) -> bool {
        matches!(self, Self::CandidateTrapped | Self::CandidateTimedOut)
    }
}

/// One input the two versions disagreed on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Disagreement {
    /// When (RFC 3339).
    pub at: String,
    /// The input, with secrets and env values redacted.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// What the serving version decided.
    pub serving: Outcome,
    /// What the candidate decided.
    pub candidate: Outcome,
}

/// Latency percentiles of one side, in microseconds, over its most recent calls.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
}

#[derive(Debug, Default)]
struct Recent(VecDeque<u64>);

impl Recent {
    fn push(&mut self, us: u64) {
        if self.0.len() == LATENCY_WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(us);
    }

    fn latency(&self) -> Latency {
        let mut sorted: Vec<u64> = self.0.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| match sorted.len() {
            0 => 0,
            n => sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
        };
        Latency {
            p50_us: at(0.50),
            p99_us: at(0.99),
        }
    }
}

/// The running diff of one candidate.
#[derive(Debug, Default)]
pub struct Diff {
    counts: BTreeMap<Comparison, u64>,
    dropped: u64,
    serving_failed: u64,
    serving: Recent,
    candidate: Recent,
    samples: BTreeMap<Comparison, VecDeque<Disagreement>>,
}

/// The diff as `GET /v1/plugins/{name}/shadow` reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiffReport {
    /// Calls both versions judged.
    pub calls: u64,
    /// Calls on which they decided the same.
    pub agreements: u64,
    /// Calls on which they did not, by kind (`allow_to_deny`, `deny_to_allow`,
    /// `different_rewrite`, `different_errors`, `candidate_trapped`, `candidate_timed_out`).
    pub disagreements: BTreeMap<String, u64>,
    /// Sampled calls the candidate did not judge because its shadow slots were busy or the
    /// machine had no idle CPU for it.
    pub dropped: u64,
    /// Sampled calls not compared because the serving version failed.
    pub serving_failed: u64,
    /// The serving version's latency on the compared calls.
    pub serving_latency: Latency,
    /// The candidate's.
    pub candidate_latency: Latency,
    /// The most recent disagreeing inputs, a few of each kind.
    pub samples: Vec<Disagreement>,
}

impl Diff {
    /// Records one compared call.
    pub fn record(&mut self, serving_us: u64, candidate_us: u64, comparison: Comparison, sample: Option<Disagreement>) {
        *self.counts.entry(comparison).or_default() += 1;
        self.serving.push(serving_us);
        self.candidate.push(candidate_us);
        if let Some(sample) = sample {
            let kept = self.samples.entry(comparison).or_default();
            if kept.len() == SAMPLES_PER_KIND {
                kept.pop_front();
            }
            kept.push_back(sample);
        }
    }

    /// Counts a sampled call the candidate could not judge.
    pub fn drop_one(&mut self) {
        self.dropped += 1;
    }

    /// Counts a sampled call whose serving version failed.
    pub fn serving_failed(&mut self) {
        self.serving_failed += 1;
    }

    /// Calls compared.
    pub fn calls(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Calls the two versions disagreed on, candidate errors included.
    pub fn disagreements(&self) -> u64 {
        self.calls() - self.counts.get(&Comparison::Agree).copied().unwrap_or(0)
    }

    /// Calls on which the candidate failed.
    pub fn candidate_errors(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(c, _)| c.is_candidate_error())
            .map(|(_, n)| n)
            .sum()
    }

    /// Latency of the serving version and the candidate.
    pub fn latencies(&self) -> (Latency, Latency) {
        (self.serving.latency(), self.candidate.latency())
    }

    /// The report.
    pub fn report(&self) -> DiffReport {
        let (serving_latency, candidate_latency) = self.latencies();
        let disagreements = self
            .counts
            .iter()
            .filter(|(c, _)| **c != Comparison::Agree)
            .map(|(c, n)| (c.label().to_owned(), *n))
            .collect();
        DiffReport {
            calls: self.calls(),
            agreements: self.counts.get(&Comparison::Agree).copied().unwrap_or(0),
            disagreements,
            dropped: self.dropped,
            serving_failed: self.serving_failed,
            serving_latency,
            candidate_latency,
            samples: self.samples.values().flatten().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(reason: &str) -> Outcome {
        Outcome::Deny { reason: reason.into() }
    }

    fn rewrite(script: &str) -> Outcome {
        Outcome::Rewrite {
            command: PluginCommand {
                kind: "shell".into(),
                script: Some(script.into()),
                args: None,
                prompt: None,
                env: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn outcomes_compare_by_what_they_let_through() {
        let failed = Outcome::Failed { error: "trap".into() };
        let cases = [
            (Outcome::Allow, Outcome::Allow, Comparison::Agree),
            (deny("a"), deny("b"), Comparison::Agree),
            (Outcome::Allow, deny("no"), Comparison::AllowToDeny),
            (rewrite("x"), deny("no"), Comparison::AllowToDeny),
            (deny("no"), Outcome::Allow, Comparison::DenyToAllow),
            (deny("no"), rewrite("x"), Comparison::DenyToAllow),
            (Outcome::Allow, rewrite("x"), Comparison::DifferentRewrite),
            (rewrite("x"), rewrite("y"), Comparison::DifferentRewrite),
            (rewrite("x"), rewrite("x"), Comparison::Agree),
            (Outcome::Allow, failed.clone(), Comparison::CandidateTrapped),
            (
                deny("no"),
                Outcome::TimedOut { error: "slow".into() },
                Comparison::CandidateTimedOut,
            ),
        ];
        for (serving, candidate, expected) in cases {
            assert_eq!(
                Comparison::of(&serving, &candidate),
                expected,
                "{serving:?} vs {candidate:?}"
            );
        }
        let errors = |field: &str| Outcome::Invalid {
            errors: vec![FieldError {
                field: field.into(),
                message: "bad".into(),
            }],
        };
        assert_eq!(Comparison::of(&errors("a"), &errors("b")), Comparison::DifferentErrors);
        assert_eq!(Comparison::of(&errors("a"), &errors("a")), Comparison::Agree);
    }

    #[test]
    fn a_rewrite_in_a_sample_shows_no_env_value() {
        let mut command = match rewrite("API_TOKEN=s3cr3t make") {
            Outcome::Rewrite { command } => command,
            _ => unreachable!(),
        };
        command.env.insert("CI".into(), "hidden-value".into());
        let shown = serde_json::to_string(&Outcome::Rewrite { command }.redacted()).unwrap();
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("hidden-value") && shown.contains("CI"),
            "{shown}"
        );
    }

    #[test]
    fn samples_and_latencies_stay_bounded() {
        let mut diff = Diff::default();
        for i in 0..(LATENCY_WINDOW as u64 + 100) {
            let sample = Disagreement {
                at: String::new(),
                input: serde_json::json!(i),
                serving: Outcome::Allow,
                candidate: deny("no"),
            };
            diff.record(i, 2 * i, Comparison::AllowToDeny, Some(sample));
        }
        let report = diff.report();
        assert_eq!(report.samples.len(), SAMPLES_PER_KIND);
        assert_eq!(report.disagreements["allow_to_deny"], LATENCY_WINDOW as u64 + 100);
        assert_eq!(report.agreements, 0);
        assert!(report.candidate_latency.p99_us > report.serving_latency.p99_us);
        assert!(report.serving_latency.p50_us >= 100, "only recent calls count");
    }
}
