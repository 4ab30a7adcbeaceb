//! A plugin's rollout: `GET`/`PUT`/`DELETE /v1/plugins/{name}/shadow` (the candidate in shadow
//! and its decision diff; an upload of one, admin only) and `POST /v1/plugins/{name}/promote`
//! (through the gate, or forced by an admin).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::plugins::manager::{Promotion, RolloutActor, RolloutError};
use crate::plugins::rollout::shadow::ShadowReport;

/// The header an upload's detached signature comes in: the content of a `.sig` file.
pub(super) const SIGNATURE_HEADER: &str = "rdev-plugin-signature";

impl From<RolloutError> for ApiError {
    fn from(e: RolloutError) -> Self {
        let message = e.to_string();
        match e {
            RolloutError::NotFound(name) => ApiError::not_found(&format!("plugin `{name}`")),
            RolloutError::NoCandidate(_) => ApiError::new(StatusCode::NOT_FOUND, "no_candidate", message),
            RolloutError::NoShadowCalls(..) => ApiError::new(StatusCode::CONFLICT, "no_shadow_calls", message),
            RolloutError::GateFails(_) => ApiError::new(StatusCode::CONFLICT, "gate_failed", message),
            RolloutError::Refused(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plugin_refused", message),
            RolloutError::Install { .. } => ApiError::unavailable("install_failed", message, 5),
        }
    }
}

pub(super) fn actor(caller: &Caller) -> RolloutActor {
    RolloutActor {
        key_id: Some(caller.principal.key.id.clone()),
        request_id: Some(super::request_id::current_request_id()),
    }
}

/// The candidate in shadow and its decision diff since it loaded: calls, agreements,
/// disagreements by kind, both versions' latency, a sample of disagreeing inputs (secrets and env
/// values redacted), and whether the promotion gate holds.
#[utoipa::path(get, path = "/v1/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, body = ShadowReport), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_shadow(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ShadowReport>, ApiError> {
    caller.require("audit:read")?;
    Ok(Json(state.plugins.shadow_report(&name)?))
}

/// Uploads a component (`application/wasm`) as the plugin's candidate, replacing any other. It is
/// checked like any version (and must carry a signature in `Rdev-Plugin-Signature` when trusted
/// keys are configured); the serving version is untouched either way. Admin only.
#[utoipa::path(put, path = "/v1/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"),
           ("Rdev-Plugin-Signature" = Option<String>, Header, description = "The component's detached signature (a `.sig` file's content)")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 200, body = ShadowReport), (status = 404, body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn put_shadow(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ShadowReport>, ApiError> {
    caller.require("admin")?;
    let wasm = component_body(&state, body).await?;
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes().to_vec());
    let report = state
        .plugins
        .upload_shadow(&name, wasm, signature, &actor(&caller))
        .await?;
    Ok(Json(report))
}

/// Takes the candidate out of shadow. Admin only.
#[utoipa::path(delete, path = "/v1/plugins/{name}/shadow", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_shadow(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("admin")?;
    state.plugins.remove_shadow(&name, &actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A promotion request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// Promote even if the gate does not hold (admin only; audited with the overridden
    /// objections).
    #[serde(default)]
    force: bool,
}

/// Makes the candidate the serving version atomically, if the plugin's gate holds (minimum
/// calls, maximum disagreement rate, no candidate errors, p99 within a factor of the serving
/// version's) or `force` is set by an admin. Refused with the gate's reasons otherwise; audited
/// either way. The new version then serves on probation like any swap.
#[utoipa::path(post, path = "/v1/plugins/{name}/promote", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body(content = Option<PromoteRequest>, content_type = "application/json"),
    responses((status = 200, body = Promotion), (status = 404, body = super::error::ErrorBody),
              (status = 409, description = "The gate does not hold", body = super::error::ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Option<Json<PromoteRequest>>,
) -> Result<Json<Promotion>, ApiError> {
    caller.require("config:write")?;
    let force = body.map(|Json(b)| b.force).unwrap_or_default();
    if force {
        caller.require("admin")?;
    }
    Ok(Json(state.plugins.promote(&name, force, &actor(&caller)).await?))
}

/// An uploaded component: at most `plugin_runtime.max_file_bytes`, not empty.
pub(super) async fn component_body(state: &AppState, body: Body) -> Result<Vec<u8>, ApiError> {
    let limit = state.config.plugin_runtime.max_file_bytes as usize;
    let wasm = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a component may be at most {limit} bytes (plugin_runtime.max_file_bytes)"),
        )
    })?;
    if wasm.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body must be a component (application/wasm)",
        ));
    }
    Ok(wasm.to_vec())
}
