//! Deploying a plugin into a running gateway: `PUT /v1/plugins/{name}` (a component, checked,
//! installed in the plugin directory and serving before the answer; admin only) and `DELETE
//! /v1/plugins/{name}` (removes a deployed plugin).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use super::rollouts::{SIGNATURE_HEADER, actor, component_body};
use crate::plugins::compat;
use crate::plugins::manager::{DeployError, Deployment};
use crate::plugins::manifest::{Overrides, PluginManifest, World};

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let message = e.to_string();
        match e {
            DeployError::Invalid(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest", message),
            DeployError::Configured(_) => ApiError::new(StatusCode::CONFLICT, "configured_plugin", message),
            DeployError::NotDeployed(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            DeployError::Refused(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plugin_refused", message),
            DeployError::Install(_) => ApiError::unavailable("install_failed", message, 5),
        }
    }
}

/// How the deployed plugin runs: its `[[plugins]]` entry, less the name (the path's) and the
/// file (the gateway's).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeployParams {
    /// The world; by default the one the component's exports implement.
    #[param(inline)]
    world: Option<World>,
    /// The configuration handed to `configure`, as JSON text (default `{}`).
    config: Option<String>,
    /// Position in its chain (default 0).
    order: Option<i32>,
    /// Deadline of one call, in milliseconds of CPU time (default 20).
    deadline_ms: Option<u64>,
    /// Memory limit, in MiB (default 32).
    memory_mib: Option<u64>,
}

impl DeployParams {
    fn manifest(self, name: &str, wasm: &[u8]) -> Result<PluginManifest, ApiError> {
        let invalid = |field: &str, message: String| ApiError::invalid_field(field, message);
        let world = match self.world {
            Some(world) => world,
            None => compat::inspect(wasm)
                .map_err(|e| invalid("body", format!("not a plugin component: {e}")))?
                .world
                .ok_or_else(|| invalid("world", "the component implements none of the worlds; name one".into()))?,
        };
        let config: serde_json::Value = match &self.config {
            Some(text) => serde_json::from_str(text).map_err(|e| invalid("config", format!("not JSON: {e}")))?,
            None => serde_json::json!({}),
        };
        let mut entry =
            serde_json::json!({ "name": name, "world": world, "file": format!("{name}.wasm"), "config": config });
        let overrides = Overrides {
            order: self.order,
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
        };
        overrides.apply(&mut entry);
        serde_json::from_value(entry).map_err(|e| invalid("query", e.to_string()))
    }
}

/// Deploys a component (`application/wasm`) as plugin `name`, in addition to the configured
/// plugins (or the defaults). It is checked like any version (a signature in
/// `Rdev-Plugin-Signature` when trusted keys are configured, its world, `configure` with the
/// given configuration, its bundled self-test) before anything is written; then it is installed
/// in the plugin directory (so a restart keeps it) and serves before the answer. A deployment of
/// the same name replaces it. Admin only; audited as `plugin.deployed`.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), DeployParams,
           ("Rdev-Plugin-Signature" = Option<String>, Header, description = "The component's detached signature (a `.sig` file's content)")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Deployment), (status = 200, description = "An earlier deployment was replaced", body = Deployment),
              (status = 409, description = "The configuration has a plugin of that name", body = super::error::ErrorBody),
              (status = 413, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
              (status = 503, description = "The plugin directory cannot be written", body = super::error::ErrorBody)))]
pub async fn deploy_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(params): Query<DeployParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    caller.require("admin")?;
    let wasm = component_body(&state, body).await?;
    let manifest = params.manifest(&name, &wasm)?;
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes().to_vec());
    let deployment = state.plugins.deploy(manifest, wasm, signature, &actor(&caller)).await?;
    let status = if deployment.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deployment)))
}

/// Removes a deployed plugin (its component and manifest) and reloads. Configured plugins are
/// not deployed ones: they change through the config file. Admin only; audited.
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn undeploy_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("admin")?;
    state.plugins.undeploy(&name, &actor(&caller)).await?;
    Ok(StatusCode::NO_CONTENT)
}
