//! `GET /v1/audit`: audit events, filtered and paginated, newest first.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Query};
use crate::store::{AuditQuery, AuditRecord};
use crate::time::{parse_rfc3339, serde_rfc3339};

/// Filters of the audit listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only events of this key.
    key_id: Option<String>,
    /// Only events with this action (`command.accepted`, `POST /v1/keys`…).
    action: Option<String>,
    /// Only events about this target (a command id, a path…).
    target: Option<String>,
    /// Only events at or after this time (RFC 3339).
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    until: Option<String>,
    /// Cursor from a previous page.
    before: Option<i64>,
    /// Page size, 1–500 (default 100).
    limit: Option<i64>,
}

/// One audit event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    id: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    at: i64,
    key_id: Option<String>,
    client_ip: Option<String>,
    action: String,
    target: String,
    outcome: String,
    request_id: Option<String>,
    /// The W3C trace id of the request, when traces were exported.
    trace_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    detail: Option<serde_json::Value>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        let detail = e
            .detail
            .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)));
        Self {
            id: r.id,
            at: e.at,
            key_id: e.key_id,
            client_ip: e.client_ip,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            trace_id: e.trace_id,
            detail,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    events: Vec<AuditView>,
    /// Pass as `before` for the next page; absent on the last page.
    next_cursor: Option<i64>,
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| parse_rfc3339(v).ok_or_else(|| ApiError::bad_request("bad_query", format!("{name} must be RFC 3339"))))
        .transpose()
}

/// Lists audit events.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams), responses((status = 200, body = AuditPage)))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require("audit:read")?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("bad_query", "limit must be between 1 and 500"));
    }
    let query = AuditQuery {
        since: time_param("since", params.since.as_deref())?,
        until: time_param("until", params.until.as_deref())?,
        key_id: params.key_id,
        action: params.action,
        target: params.target,
        before: params.before,
        limit,
    };
    let records = state.store.list_audit(&query).await?;
    let next_cursor = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(Json(AuditPage {
        events: records.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
