//! `POST /v1/projects/{project}/explain`: what `POST …/commands` with the same body would meet,
//! decided by the same code, with nothing queued or run and no command audited (the explain call
//! itself is audited like any mutating request).

use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::commands::{CommandError, CommandRequest, Queueable};
use crate::plugins::rollout::redact;
use crate::plugins::{Decision, PluginCommand};

/// One plugin's decision, in the order taken.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExplainedDecision {
    /// `validator` or `sanitizer`.
    stage: &'static str,
    /// Plugin name.
    plugin: String,
    /// Digest of the version that decided.
    digest: Option<String>,
    /// `allow`, `deny`, `rewrite`, `valid`, `invalid`, `failed` or `overloaded`.
    verdict: &'static str,
    /// The reason given with a denial or failure.
    reason: Option<String>,
    /// The command a rewrite made (env values redacted); the chain then judges it from the start.
    #[schema(value_type = Option<Object>)]
    rewrite: Option<PluginCommand>,
    /// Time the call took, in microseconds.
    duration_us: u64,
}

/// What the request would meet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// `queued` (it would be accepted) or `refused`.
    outcome: &'static str,
    /// The status `POST …/commands` would answer: 202, or the refusal's.
    status: u16,
    /// Why it would be refused: the error code and message the client would get.
    error: Option<ExplainedError>,
    /// Every plugin decision, validators first, then the sanitizer chain.
    decisions: Vec<ExplainedDecision>,
    /// The command that would be queued, after rewrites (env values redacted).
    #[schema(value_type = Option<Object>)]
    command: Option<PluginCommand>,
    /// Its priority.
    priority: Option<i32>,
    /// Its timeout, in seconds.
    timeout_secs: Option<u64>,
}

/// A refusal as the client would get it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExplainedError {
    /// Error code.
    code: &'static str,
    /// Message.
    message: String,
}

fn explained(stage: &'static str, decisions: Vec<Decision>) -> impl Iterator<Item = ExplainedDecision> {
    decisions.into_iter().map(move |d| ExplainedDecision {
        stage,
        rewrite: d.rewrite.as_ref().map(redact::command),
        plugin: d.plugin,
        digest: d.digest,
        verdict: d.verdict,
        reason: d.reason,
        duration_us: d.duration_us,
    })
}

/// Explains a command request: each plugin's verdict, reason, rewrite and duration in order,
/// the command after rewrites, and whether it would be queued or refused and why. Nothing is
/// queued, run or audited as a command; the key's command rate is not used up.
#[utoipa::path(post, path = "/v1/projects/{project}/explain", tag = "commands",
    params(("project" = String, Path, description = "Project name")),
    request_body = CommandRequest,
    responses((status = 200, body = Explanation), (status = 404, body = super::error::ErrorBody)))]
pub async fn explain_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Json(request): Json<CommandRequest>,
) -> Result<Json<Explanation>, ApiError> {
    caller.require("commands:run")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let bound = state.limits.queue_bound(&caller.principal.key);
    let explanation = state
        .commands
        .explain(&caller.principal, &project, &request, bound)
        .await;
    let mut decisions: Vec<_> = explained("validator", explanation.validators).collect();
    decisions.extend(explained("sanitizer", explanation.sanitizers));
    Ok(Json(match explanation.outcome {
        Ok(Queueable {
            command,
            priority,
            timeout_secs,
        }) => Explanation {
            outcome: "queued",
            status: 202,
            error: None,
            decisions,
            command: Some(redact::command(&PluginCommand::from(&command))),
            priority: Some(priority),
            timeout_secs: Some(timeout_secs),
        },
        // The store failing is this call's fault to report, not a verdict on the command.
        Err(CommandError::Store(e)) => return Err(e.into()),
        Err(refusal) => {
            let error = ApiError::from(refusal);
            Explanation {
                outcome: "refused",
                status: error.status.as_u16(),
                error: Some(ExplainedError {
                    code: error.code,
                    message: error.message,
                }),
                decisions,
                command: None,
                priority: None,
                timeout_secs: None,
            }
        }
    }))
}
