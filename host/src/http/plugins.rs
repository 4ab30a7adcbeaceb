//! `GET /v1/plugins` (status of every plugin) and `POST /v1/plugins/reload` (reload now instead
//! of waiting for the file watcher).

use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::Json;
use crate::plugins::manager::ReloadReport;
use crate::plugins::slot::PluginStatus;

/// Every configured plugin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginList {
    plugins: Vec<PluginStatus>,
}

/// Lists the plugins in chain order, with the serving version, health and counters.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list_plugins(State(state): State<AppState>, caller: Caller) -> Result<Json<PluginList>, ApiError> {
    caller.require("audit:read")?;
    Ok(Json(PluginList {
        plugins: state.plugins.statuses(),
    }))
}

/// Re-reads the plugin list and every plugin file now; changed plugins are checked and swapped
/// in, refused ones keep their previous version.
#[utoipa::path(post, path = "/v1/plugins/reload", tag = "plugins", responses((status = 200, body = ReloadReport)))]
pub async fn reload_plugins(State(state): State<AppState>, caller: Caller) -> Result<Json<ReloadReport>, ApiError> {
    caller.require("config:write")?;
    Ok(Json(state.plugins.reload().await))
}
