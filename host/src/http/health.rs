//! Liveness, readiness (per-dependency checks) and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use super::AppState;

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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers and the backend can run commands.
#[utoipa::path(get, path = "/ready", tag = "health", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = check(state.store.ping().await.map_err(|e| {
        tracing::warn!(request_id = %super::context::current_request_id(), error = %e, "database not ready");
        "database unreachable".to_owned()
    }));
    let backend = check(state.backend.ready().await);
    let kubernetes = state.backend.readiness_details();
    let accepting_commands = state.commands.is_accepting();
    let all_ok = database.ok && backend.ok && accepting_commands;
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if all_ok { "ready" } else { "not_ready" },
        database,
        backend,
        kubernetes,
        accepting_commands,
    };
    (status, Json(body))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health", security(()), responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    state
        .metrics
        .commands_running
        .set(state.commands.running_count() as i64);
    let body = state.metrics.render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()), responses((status = 200, description = "OpenAPI document")))]
pub async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(doc)
}
