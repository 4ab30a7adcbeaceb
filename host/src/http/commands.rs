//! Starting, listing, inspecting and cancelling commands.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::context::{Caller, RequestAudited};
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::commands::claude::RunSummary;
use crate::commands::{CommandError, CommandRequest, CommandSpec, Submission};
use crate::limits::LimitKind;
use crate::store::{CommandQuery, CommandRecord, CommandState};
use crate::time::serde_rfc3339;

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A command as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandView {
    id: String,
    project: String,
    kind: String,
    command: Option<CommandSpec>,
    state: CommandState,
    priority: i32,
    timeout_secs: i64,
    exit_code: Option<i32>,
    reason: Option<String>,
    key_id: String,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    created_at: i64,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    started_at: Option<i64>,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    finished_at: Option<i64>,
    /// The gateway replica that runs it, or ran it (from `GET /ready`'s `replica_id`).
    replica_id: Option<String>,
    /// `claude` commands: the Claude Code session it runs in (resume it with `resume`).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// `claude` commands: what the run reported at its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<RunSummary>,
}

impl From<CommandRecord> for CommandView {
    fn from(c: CommandRecord) -> Self {
        Self {
            command: serde_json::from_str(&c.spec).ok(),
            id: c.id,
            project: c.project,
            kind: c.kind,
            state: c.state,
            priority: c.priority,
            timeout_secs: c.timeout_secs,
            exit_code: c.exit_code,
            reason: c.reason,
            key_id: c.key_id,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            replica_id: c.owner,
            session_id: c.session_id,
            run: c.run_summary.and_then(|json| serde_json::from_str(&json).ok()),
        }
    }
}

/// A page of commands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandList {
    commands: Vec<CommandView>,
    /// Pass as `before` for the next page; absent on the last page.
    next_cursor: Option<i64>,
}

/// Filters of a command listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only commands in this state.
    state: Option<String>,
    /// Cursor from a previous page.
    before: Option<i64>,
    /// Page size, 1–200 (default 50).
    limit: Option<i64>,
}

/// Loads a command the caller may see (404 otherwise).
pub(super) async fn visible_command(state: &AppState, caller: &Caller, id: &str) -> Result<CommandRecord, ApiError> {
    let cmd = state.store.get_command(id).await?;
    cmd.filter(|c| caller.principal.can_see(&c.project))
        .ok_or_else(|| ApiError::not_found("command"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 255 && t.bytes().all(|b| b.is_ascii_graphic()));
    let text = text.ok_or_else(|| {
        ApiError::bad_request(
            "bad_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters",
        )
    })?;
    Ok(Some(text.to_owned()))
}

/// Starts a command (202), or returns the earlier one for a repeated `Idempotency-Key` (200).
#[utoipa::path(post, path = "/v1/projects/{project}/commands", tag = "commands",
    params(("project" = String, Path, description = "Project name"),
           ("Idempotency-Key" = Option<String>, Header, description = "Same key and body return the same command")),
    request_body = CommandRequest,
    responses((status = 202, body = CommandView), (status = 200, body = CommandView),
              (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
              (status = 429, description = "The key's command rate or the project's queue bound is reached", body = super::error::ErrorBody)))]
pub async fn create_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(request): Json<CommandRequest>,
) -> Result<Response, ApiError> {
    caller.require("commands:run")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let idempotency_key = idempotency_key(&headers)?;
    let key = &caller.principal.key;
    state.limits.admit_command(key, state.replica.live_replicas())?;
    let submission = Submission {
        request,
        idempotency_key,
        queue_bound: state.limits.queue_bound(key),
        request_audit: caller.request_audit(),
    };
    let submitted = state
        .commands
        .submit(&caller.principal, &caller.actor(), &project, submission)
        .await;
    if let Err(CommandError::QueueFull(_)) = &submitted {
        state.limits.count_refusal(LimitKind::Queue);
    }
    let (record, created) = submitted?;
    let answer = Json(CommandView::from(record));
    // A new command was stored with this request's audit row; a replay was not.
    Ok(match created {
        true => (StatusCode::ACCEPTED, Extension(RequestAudited), answer).into_response(),
        false => (StatusCode::OK, answer).into_response(),
    })
}

/// Commands of a project, newest first.
#[utoipa::path(get, path = "/v1/projects/{project}/commands", tag = "commands",
    params(("project" = String, Path, description = "Project name"), ListParams),
    responses((status = 200, body = CommandList)))]
pub async fn list_commands(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<CommandList>, ApiError> {
    caller.require("commands:read")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let filter = params.state.as_deref().map(str::parse::<CommandState>).transpose();
    let filter = filter.map_err(|e| ApiError::bad_request("bad_query", e))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("bad_query", "limit must be between 1 and 200"));
    }
    let query = CommandQuery {
        project: project.name.clone(),
        state: filter,
        before: params.before,
        limit,
    };
    let records = state.store.list_commands(&query).await?;
    let next_cursor = (records.len() as i64 == limit)
        .then(|| records.last().map(|c| c.queue_seq))
        .flatten();
    Ok(Json(CommandList {
        commands: records.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One command.
#[utoipa::path(get, path = "/v1/commands/{id}", tag = "commands", params(("id" = String, Path, description = "Command id")),
    responses((status = 200, body = CommandView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CommandView>, ApiError> {
    caller.require("commands:read")?;
    Ok(Json(visible_command(&state, &caller, &id).await?.into()))
}

/// Cancels a queued or running command (its whole process group is killed).
#[utoipa::path(post, path = "/v1/commands/{id}/cancel", tag = "commands", params(("id" = String, Path, description = "Command id")),
    responses((status = 200, body = CommandView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn cancel_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CommandView>, ApiError> {
    caller.require("commands:run")?;
    let cmd = visible_command(&state, &caller, &id).await?;
    Ok(Json(state.commands.cancel(&caller.actor(), &cmd).await?.into()))
}
