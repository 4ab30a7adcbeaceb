//! Claude configuration items of a project: `commands`, `skills`, `agents`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::claude_items::{ItemKind, ItemSummary, MAX_ITEM_BYTES, is_valid_item_name};

/// Items of one type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemList {
    items: Vec<ItemSummary>,
}

/// One item with its content.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Item {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    content: String,
}

/// Body of `PUT`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemContent {
    /// Markdown content.
    content: String,
}

fn item_kind(text: &str) -> Result<ItemKind, ApiError> {
    ItemKind::parse(text).ok_or_else(|| ApiError::not_found("item type"))
}

fn item_name(name: &str) -> Result<&str, ApiError> {
    if is_valid_item_name(name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            "item names are 1-64 of [A-Za-z0-9._-], starting with a letter or digit",
        ))
    }
}

/// Lists items of a type.
#[utoipa::path(get, path = "/v1/projects/{project}/claude/{type}", tag = "claude",
    params(("project" = String, Path, description = "Project name"), ("type" = String, Path, description = "commands, skills or agents")),
    responses((status = 200, body = ItemList), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, kind)): Path<(String, String)>,
) -> Result<Json<ItemList>, ApiError> {
    caller.require("projects:read")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let items = state.backend.list_items(&project, item_kind(&kind)?).await?;
    Ok(Json(ItemList { items }))
}

/// Reads an item.
#[utoipa::path(get, path = "/v1/projects/{project}/claude/{type}/{name}", tag = "claude",
    params(("project" = String, Path, description = "Project name"), ("type" = String, Path, description = "commands, skills or agents"),
           ("name" = String, Path, description = "Item name, without .md")),
    responses((status = 200, body = Item), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, kind, name)): Path<(String, String, String)>,
) -> Result<Json<Item>, ApiError> {
    caller.require("projects:read")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let kind = item_kind(&kind)?;
    let content = state.backend.read_item(&project, kind, item_name(&name)?).await?;
    Ok(Json(Item {
        name,
        kind: kind.as_str(),
        content,
    }))
}

/// Creates (201) or replaces (200) an item.
#[utoipa::path(put, path = "/v1/projects/{project}/claude/{type}/{name}", tag = "claude",
    params(("project" = String, Path, description = "Project name"), ("type" = String, Path, description = "commands, skills or agents"),
           ("name" = String, Path, description = "Item name, without .md")),
    request_body = ItemContent,
    responses((status = 201, body = Item), (status = 200, body = Item), (status = 422, body = super::error::ErrorBody)))]
pub async fn put_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, kind, name)): Path<(String, String, String)>,
    Json(body): Json<ItemContent>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    caller.require("config:write")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let kind = item_kind(&kind)?;
    item_name(&name)?;
    if body.content.len() > MAX_ITEM_BYTES || body.content.contains('\0') {
        return Err(ApiError::invalid_field(
            "content",
            format!("must be at most {MAX_ITEM_BYTES} bytes without NUL"),
        ));
    }
    let request = serde_json::json!({ "type": kind.as_str(), "name": name, "content": body.content });
    state
        .commands
        .policies()
        .validate("claude-item", &request, Some(&project.name))
        .await?;
    let created = state.backend.write_item(&project, kind, &name, &body.content).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(Item {
            name,
            kind: kind.as_str(),
            content: body.content,
        }),
    ))
}

/// Deletes an item.
#[utoipa::path(delete, path = "/v1/projects/{project}/claude/{type}/{name}", tag = "claude",
    params(("project" = String, Path, description = "Project name"), ("type" = String, Path, description = "commands, skills or agents"),
           ("name" = String, Path, description = "Item name, without .md")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, kind, name)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("config:write")?;
    let project = state.visible_project(&caller.principal, &project)?;
    let kind = item_kind(&kind)?;
    state.backend.delete_item(&project, kind, item_name(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
