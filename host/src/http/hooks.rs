//! `POST /hooks/claude/{id}/pre-tool-use`: the `PreToolUse` hook of a `claude` run. Claude Code
//! posts every tool call here before it runs; the answer is the hook's decision. Authenticated
//! by the run's own credential (not an API key), which speaks for that command only, while it
//! runs on this replica. Any error answer blocks the tool: the hook is configured to fail closed.

use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use serde::Serialize;

use super::AppState;
use super::context::client_address;
use super::error::ApiError;
use super::extract::{Json, Path};
use super::request_id::{current_request_id, current_trace_id};
use crate::commands::Actor;
use crate::commands::claude::{ToolCall, ToolVerdict};

/// What Claude Code reads from the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    hook_specific_output: HookDecision,
}

/// The decision on one tool call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookDecision {
    /// `PreToolUse`.
    hook_event_name: &'static str,
    /// `allow` or `deny`.
    permission_decision: &'static str,
    /// Why (Claude sees it and can adapt).
    permission_decision_reason: String,
    /// The input to run instead, when a sanitizer rewrote a `Bash` command.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    updated_input: Option<serde_json::Value>,
}

impl From<ToolVerdict> for HookAnswer {
    fn from(verdict: ToolVerdict) -> Self {
        let reason = match (&verdict.reason, verdict.updated_input.is_some()) {
            (Some(reason), _) => reason.clone(),
            (None, true) => "allowed by rdev after a sanitizer rewrote the command".into(),
            (None, false) => "allowed by rdev".into(),
        };
        Self {
            hook_specific_output: HookDecision {
                hook_event_name: "PreToolUse",
                permission_decision: verdict.decision(),
                permission_decision_reason: reason,
                updated_input: verdict.updated_input,
            },
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "not the credential of a claude run of this command that is running here",
    )
}

/// Judges a tool call of a running `claude` command.
#[utoipa::path(post, path = "/hooks/claude/{id}/pre-tool-use", tag = "claude",
    params(("id" = String, Path, description = "Command id")),
    request_body(content = Object, description = "Claude Code's PreToolUse hook input (tool_name, tool_input, tool_use_id, session_id…)"),
    security(("run_credential" = [])),
    responses((status = 200, body = HookAnswer, description = "allow, or deny with the reason"),
              (status = 401, body = super::error::ErrorBody, description = "Not the credential of this command's running run"),
              (status = 503, body = super::error::ErrorBody, description = "The decision could not be audited; the tool is blocked")))]
pub async fn pre_tool_use(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(call): Json<ToolCall>,
) -> Result<Json<HookAnswer>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let actor = Actor {
        key_id: None,
        client_ip: Some(client_address(&state, &headers, &extensions).to_string()),
        request_id: Some(current_request_id()),
        trace_id: current_trace_id(),
    };
    let verdict = state.commands.pre_tool_use(&actor, (&id, token.trim()), &call).await?;
    Ok(Json(verdict.ok_or_else(unauthorized)?.into()))
}
