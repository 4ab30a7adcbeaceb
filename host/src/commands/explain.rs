//! Explain: what intake would make of a command request (every plugin's decision in order, the
//! command after rewrites, queued or refused and why) through the same checks and policy chains
//! as a real request, with nothing queued, run or audited as a command.

use super::intake::{Intake, Judged, Judgement, Prechecked};
use super::{CommandError, CommandRequest, CommandSpec};
use crate::auth::Principal;
use crate::plugins::Decision;
use crate::projects::Project;

/// What a request would meet.
pub struct Explanation {
    /// The validators' decisions, in order.
    pub validators: Vec<Decision>,
    /// The sanitizers' decisions, in order (a rewrite starts the chain again).
    pub sanitizers: Vec<Decision>,
    /// The command that would be queued, with its priority and timeout, or why it would not be.
    pub outcome: Result<Queueable, CommandError>,
}

/// A command that would be queued.
pub struct Queueable {
    /// As the sanitizers leave it.
    pub command: CommandSpec,
    /// Its priority.
    pub priority: i32,
    /// Its timeout, in seconds.
    pub timeout_secs: u64,
}

impl Intake {
    /// Explains `request` for `who` in `project`; `queue_bound` as for a submission. The
    /// key's command rate is neither checked nor used up.
    pub(super) async fn explain(
        &self,
        who: &Principal,
        project: &Project,
        request: &CommandRequest,
        queue_bound: Option<u32>,
    ) -> Explanation {
        let refused = |error| Explanation {
            validators: Vec::new(),
            sanitizers: Vec::new(),
            outcome: Err(error),
        };
        let Prechecked {
            priority, timeout_secs, ..
        } = match self.precheck(project, request, queue_bound).await {
            Ok(checked) => checked,
            Err(e) => return refused(e),
        };
        let Judgement {
            validators,
            sanitizers,
            outcome,
        } = self.judge(who, project, request).await;
        let outcome = match outcome {
            Ok(command) => Ok(Queueable {
                command,
                priority,
                timeout_secs,
            }),
            Err(Judged::Invalid(e)) => Err(CommandError::Invalid(e)),
            Err(Judged::Refused(refusal)) => {
                let mut taken = validators.clone();
                taken.extend(sanitizers.iter().cloned());
                Err(CommandError::Refused(refusal, taken))
            }
        };
        Explanation {
            validators,
            sanitizers,
            outcome,
        }
    }
}
