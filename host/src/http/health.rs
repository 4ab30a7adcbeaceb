//! Liveness, readiness (per-dependency checks) and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;

/// Liveness answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// One dependency's readiness.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Check {
    /// Whether it works.
    ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Database reachable.
    database: Check,
    /// Execution backend usable.
    backend: Check,
    /// This replica's lease renewed within its expiry (peers take it as alive).
    lease: Check,
    /// This replica's id.
    replica_id: String,
    /// Replicas with a live lease on the database, this one included (at its last heartbeat).
    replicas_live: i64,
    /// The Kubernetes API connection (namespace, circuit breaker, pods watched), for the
    /// `kubernetes` backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    kubernetes: Option<serde_json::Value>,
    /// Accepting commands (false while shutting down).
    accepting_commands: bool,
}

fn check(result: Result<(), String>) -> Check {
    Check {
        ok: result.is_ok(),
        error: result.err(),
    }
}

/// How long the database probe of `/ready` may take: a probe that waits as long as requests may
/// would make every probe of a sick database take the full timeout.
const DATABASE_PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// The database takes a write and answers a read, within [`DATABASE_PROBE_DEADLINE`].
async fn database_ready(state: &AppState) -> Result<(), String> {
    let outcome = tokio::time::timeout(DATABASE_PROBE_DEADLINE, state.store.probe()).await;
    let summary = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => {
            let trace_id = super::request_id::current_trace_id();
            tracing::warn!(request_id = %super::request_id::current_request_id(), trace_id = trace_id.as_deref(),
                error = %e, "database not ready");
            e.summary()
        }
        Err(_) => "the database did not answer in time",
    };
    Err(summary.to_owned())
}

fn lease_fresh(state: &AppState) -> Result<(), String> {
    if state.replica.lease_is_fresh() {
        return Ok(());
    }
    let age = state.replica.lease_age_ms();
    Err(format!(
        "the lease was last renewed {age} ms ago; peers may take this replica as dead"
    ))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers, the backend can run commands and this replica's lease is held.
#[utoipa::path(get, path = "/ready", tag = "health", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let body = readiness(&state).await;
    let status = if body.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn readiness(state: &AppState) -> Readiness {
    let database = check(database_ready(state).await);
    let backend = check(state.backend.ready().await);
    let accepting_commands = state.commands.is_accepting();
    let lease = check(lease_fresh(state));
    let all_ok = database.ok && backend.ok && lease.ok && accepting_commands;
    Readiness {
        status: if all_ok { "ready" } else { "not_ready" },
        database,
        backend,
        lease,
        replica_id: state.replica.id(),
        replicas_live: state.replica.live_replicas(),
        kubernetes: state.backend.readiness_details(),
        accepting_commands,
    }
}

/// Prometheus metrics (text exposition format). With `[auth] metrics_require_key`, a key with
/// the `metrics:read` scope is required.
#[utoipa::path(get, path = "/metrics", tag = "health", security((), ("bearer" = ["metrics:read"])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "With `metrics_require_key`: no valid key", body = super::error::ErrorBody),
        (status = 403, description = "With `metrics_require_key`: the key lacks `metrics:read`", body = super::error::ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    if state.config.auth.metrics_require_key {
        let (parts, _) = req.into_parts();
        let ip = super::context::client_address(&state, &parts.headers, &parts.extensions);
        let principal = super::context::authenticate(&state, &parts.headers, ip)
            .await
            .map_err(|(error, _)| error)?;
        principal.require("metrics:read")?;
    }
    refresh_gauges(&state).await;
    let body = state.metrics.render();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Gauges read at scrape time rather than kept up to date on every change.
async fn refresh_gauges(state: &AppState) {
    let metrics = &state.metrics;
    metrics.commands_running.set(state.commands.running_count() as i64);
    match state.store.count_queued(None).await {
        Ok(n) => metrics.commands_queued.set(n),
        Err(e) => tracing::debug!(error = %e, "could not count queued commands for the metrics"),
    }
    let now = crate::time::now_ms();
    match state.store.outbox_depth(now).await {
        Ok(depth) => {
            metrics.webhook_due.set(depth.due);
            let age = depth.oldest_due_at.map_or(0, |at| (now - at).max(0));
            metrics.webhook_oldest_due_age.set(age as f64 / 1000.0);
        }
        Err(e) => tracing::debug!(error = %e, "could not read the webhook backlog for the metrics"),
    }
    let ready = readiness(state).await;
    let checks = [
        ("database", ready.database.ok),
        ("backend", ready.backend.ok),
        ("lease", ready.lease.ok),
        ("accepting_commands", ready.accepting_commands),
        ("all", ready.status == "ready"),
    ];
    for (check, ok) in checks {
        metrics.ready.with_label_values(&[check]).set(i64::from(ok));
    }
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()), responses((status = 200, description = "OpenAPI document")))]
pub async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(doc)
}
