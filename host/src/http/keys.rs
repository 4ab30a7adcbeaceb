//! Key management (admin): create (the token is shown once), list, get, revoke.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::auth::{NewKey, SCOPES};
use crate::limits::LimitsConfig;
use crate::names::is_valid_name;
use crate::store::KeyRecord;
use crate::time::{parse_rfc3339, serde_rfc3339};

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Name (1–100 printable characters).
    name: String,
    /// Scopes: `projects:read`, `commands:run`, `commands:read`, `config:write`, `audit:read`,
    /// `metrics:read`, `admin`.
    scopes: Vec<String>,
    /// Projects the key may see (omit for all).
    #[serde(default)]
    projects: Option<Vec<String>>,
    /// Networks the key may be used from, as CIDRs (omit for any).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Expiry, RFC 3339 (omit for none).
    #[serde(default)]
    expires_at: Option<String>,
    /// Rate-limit tier, one of the configured `[limits.tiers]` (omit for `default`).
    #[serde(default)]
    rate_limit_tier: Option<String>,
}

/// A key as shown to admins (never its hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    id: String,
    name: String,
    scopes: Vec<String>,
    projects: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<String>>)]
    allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    expires_at: Option<i64>,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    created_at: i64,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    last_used_at: Option<i64>,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    revoked_at: Option<i64>,
    /// Rate-limit tier (`default` unless one was given).
    rate_limit_tier: String,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            projects: k.projects.clone(),
            allowed_cidrs: k.allowed_cidrs.clone(),
            expires_at: k.expires_at,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            rate_limit_tier: k
                .rate_limit_tier
                .clone()
                .unwrap_or_else(|| crate::limits::DEFAULT_TIER.to_owned()),
        }
    }
}

/// A new key and its token (shown only here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    key: KeyView,
    /// The bearer token. It cannot be retrieved again.
    token: String,
}

/// List of keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

fn validate(req: &CreateKeyRequest, limits: &LimitsConfig) -> Result<Option<i64>, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name", "must be 1-100 printable characters"));
    }
    if req.scopes.is_empty() {
        return Err(ApiError::invalid_field("scopes", "at least one scope is required"));
    }
    if let Some(bad) = req.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(ApiError::invalid_field("scopes", format!("unknown scope `{bad}`")));
    }
    if let Some(bad) = req.projects.iter().flatten().find(|p| !is_valid_name(p)) {
        return Err(ApiError::invalid_field(
            "projects",
            format!("`{bad}` is not a project name"),
        ));
    }
    if let Some(tier) = &req.rate_limit_tier
        && !limits.has_tier(tier)
    {
        return Err(ApiError::invalid_field(
            "rate_limit_tier",
            format!("`{tier}` is not a configured tier"),
        ));
    }
    let Some(text) = &req.expires_at else { return Ok(None) };
    let at =
        parse_rfc3339(text).ok_or_else(|| ApiError::invalid_field("expires_at", "must be an RFC 3339 timestamp"))?;
    if at <= crate::time::now_ms() {
        return Err(ApiError::invalid_field("expires_at", "must be in the future"));
    }
    Ok(Some(at))
}

/// Creates a key.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 422, body = super::error::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require("admin")?;
    let expires_at = validate(&req, &state.config.limits)?;
    let body = serde_json::to_value(&req).unwrap_or_default();
    state.commands.policies().validate("key", &body, None).await?;
    let new = NewKey {
        name: req.name.trim().to_owned(),
        scopes: req.scopes,
        projects: req.projects,
        allowed_cidrs: req.allowed_cidrs,
        expires_at,
        rate_limit_tier: req.rate_limit_tier,
    };
    let audit = caller.actor().audit("key.create", "", "created", None);
    let (record, token) = state.auth.create(new, Some(audit)).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: KeyView::from(&record),
            token,
        }),
    ))
}

/// Lists keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeyList)))]
pub async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<Json<KeyList>, ApiError> {
    caller.require("admin")?;
    let keys = state.store.list_keys().await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyView::from).collect(),
    }))
}

/// One key.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require("admin")?;
    let key = state
        .store
        .get_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    Ok(Json(KeyView::from(&key)))
}

/// Revokes a key; it stops working at once, open streams included.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("admin")?;
    let key = state
        .store
        .get_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    if key.revoked_at.is_none() {
        let audit = caller.actor().audit("key.revoke", &id, "revoked", None);
        state.auth.revoke(&id, Some(audit)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
