//! Explain: what intake would make of a command request (every plugin's decision in order, the
//! command after rewrites, queued or refused and why) through the same checks and policy chains
//! as a real request, with nothing queued, run or audited as a command.

use tracing::Instrument;

use super::intake::{Intake, Prechecked};
use super::{CommandError, CommandRequest, CommandSpec, CommandsConfig, SpecError};
use crate::auth::Principal;
use crate::plugins::{Decision, PluginCommand, Policies, Refusal, SanitizeInput};
use crate::projects::Project;

/// What the policies made of a request.
pub struct Judgement {
    /// The validators' decisions, in order.
    pub validators: Vec<Decision>,
    /// The sanitizers' decisions, in order (a rewrite starts the chain again).
    pub sanitizers: Vec<Decision>,
    /// The command as the sanitizers leave it, or why it is refused.
    pub outcome: Result<CommandSpec, Judged>,
}

/// Why a judged request is refused.
pub enum Judged {
    /// It is not a valid command.
    Invalid(SpecError),
    /// A policy refused it.
    Refused(Refusal),
}

/// Who asks, as the sanitizers see it.
pub struct Asker<'a> {
    /// The key's id.
    pub key_id: &'a str,
    /// The key's scopes.
    pub scopes: &'a [String],
}

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

/// What the validators and the sanitizer chain make of a request, recording nothing: the
/// command as they leave it, or why it is refused, and every decision taken. Intake, the explain
/// call and `rdev plugins test --command` all judge through this.
pub async fn judge(
    policies: &Policies,
    commands: &CommandsConfig,
    asker: &Asker<'_>,
    project: &Project,
    request: &CommandRequest,
) -> Judgement {
    let recheck = |spec: &CommandSpec| spec.validate(commands, &project.settings);
    let spec = CommandSpec::from_request(request);
    if let Err(e) = recheck(&spec) {
        return Judgement {
            validators: Vec::new(),
            sanitizers: Vec::new(),
            outcome: Err(Judged::Invalid(e)),
        };
    }
    let body = serde_json::to_value(request).unwrap_or_default();
    // The validators judge the request while the sanitizers judge the command: the two chains
    // are independent, and on an idle gateway they run on two cores at once.
    let chains = policies.clone();
    let name = project.name.clone();
    let validation = async move { chains.validate_recorded("command", &body, Some(&name)).await };
    let validation = tokio::spawn(validation.instrument(tracing::Span::current()));
    let input = SanitizeInput {
        project: project.name.clone(),
        command: PluginCommand::from(&spec),
        key_id: asker.key_id.to_owned(),
        scopes: asker.scopes.to_vec(),
        workdir: project.workspace.to_string_lossy().into_owned(),
    };
    let recheck_message =
        |c: &PluginCommand| recheck(&CommandSpec::from(c.clone())).map_err(|e| format!("{}: {}", e.field, e.message));
    let sanitized = policies.sanitize(input, recheck_message).await;
    let validated = validation.await.unwrap_or_else(|e| {
        let message = format!("validation stopped: {e}");
        let error = crate::plugins::PluginError {
            plugin: "request validators".into(),
            digest: None,
            message,
            kind: crate::plugins::FailureKind::Failed,
        };
        Err((Refusal::Failed(error), Vec::new()))
    });
    let (validators, refused_by_validators) = match validated {
        Ok(decisions) => (decisions, None),
        Err((refusal, decisions)) => (decisions, Some(refusal)),
    };
    let (sanitizers, outcome) = match sanitized {
        Ok((command, decisions)) => (decisions, Ok(CommandSpec::from(command))),
        Err((refusal, decisions)) => (decisions, Err(Judged::Refused(refusal))),
    };
    let outcome = match refused_by_validators {
        Some(refusal) => Err(Judged::Refused(refusal)),
        None => outcome,
    };
    Judgement {
        validators,
        sanitizers,
        outcome,
    }
}
