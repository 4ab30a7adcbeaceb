//! Webhook subscriptions (`webhooks:read` / `webhooks:write`): create (the secret is shown once),
//! list, get, replace, delete, rotate the secret, pause and resume, send a test event; the
//! delivery log with every attempt, and redelivery.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::store::{
    AttemptRecord, DeliveryQuery, DeliveryRecord, DeliveryState, SubscriptionRecord, SubscriptionState,
};
use crate::time::serde_rfc3339;
use crate::webhooks::{SubscriptionFields, WebhookError};

/// Body of `POST /v1/webhooks` and `PUT /v1/webhooks/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// Receiver URL (`https`; see the SSRF rules in `docs/webhooks.md`).
    url: String,
    /// Event types, families (`command.*`) or `*`.
    events: Vec<String>,
    /// Projects whose events it receives (omit for all).
    #[serde(default)]
    projects: Option<Vec<String>>,
    /// The `webhook-formatter` plugin that renders bodies (default `generic-formatter`).
    #[serde(default)]
    formatter: Option<String>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
    /// Bytes of a command's last output included in its end events (0–16384, default 0).
    #[serde(default)]
    output_tail_bytes: Option<i64>,
}

impl From<SubscriptionRequest> for SubscriptionFields {
    fn from(r: SubscriptionRequest) -> Self {
        Self {
            url: r.url,
            events: r.events,
            projects: r.projects,
            formatter: r.formatter.unwrap_or_else(|| "generic-formatter".to_owned()),
            description: r.description.unwrap_or_default(),
            output_tail_bytes: r.output_tail_bytes.unwrap_or(0),
        }
    }
}

/// A subscription as shown (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    id: String,
    url: String,
    events: Vec<String>,
    projects: Option<Vec<String>>,
    formatter: String,
    description: String,
    output_tail_bytes: i64,
    /// `active`, `paused` or `disabled`.
    state: SubscriptionState,
    /// Why the gateway disabled it.
    disabled_reason: Option<String>,
    /// Since when its deliveries have been failing.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    failing_since: Option<i64>,
    /// Until when the previous secret still signs, after a rotation.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    previous_secret_until: Option<i64>,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    created_at: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    updated_at: i64,
}

impl From<SubscriptionRecord> for SubscriptionView {
    fn from(s: SubscriptionRecord) -> Self {
        Self {
            previous_secret_until: s.previous_secret.map(|(_, until)| until),
            id: s.id,
            url: s.url,
            events: s.events,
            projects: s.projects,
            formatter: s.formatter,
            description: s.description,
            output_tail_bytes: s.output_tail_bytes,
            state: s.state,
            disabled_reason: s.disabled_reason,
            failing_since: s.failing_since,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A subscription with its signing secret, shown only at creation and rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    subscription: SubscriptionView,
    /// `whsec_…`: verify signatures with it. It cannot be retrieved again.
    secret: String,
}

/// List of subscriptions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    webhooks: Vec<SubscriptionView>,
}

/// Body of `POST /v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Seconds the current secret keeps signing beside the new one (default one day).
    #[serde(default)]
    overlap_secs: Option<u64>,
}

/// One delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` header: the same on every attempt.
    id: String,
    event_id: String,
    event_type: String,
    project: Option<String>,
    state: DeliveryState,
    /// Attempts since it was created or last redelivered.
    attempts: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    created_at: i64,
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schema(value_type = Option<String>)]
    finished_at: Option<i64>,
    /// Every attempt, in order (in `GET …/deliveries/{delivery}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
}

impl DeliveryView {
    fn of(d: DeliveryRecord, attempts: Option<Vec<AttemptRecord>>) -> Self {
        Self {
            id: d.id,
            event_id: format!("evt_{}", d.event_id),
            event_type: d.event_type,
            project: d.project,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.due_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            finished_at: d.finished_at,
            attempt_log: attempts.map(|a| a.into_iter().map(AttemptView::from).collect()),
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    attempt: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schema(value_type = String)]
    at: i64,
    /// HTTP status, if the receiver answered.
    status: Option<i64>,
    latency_ms: i64,
    /// `status`, `redirect`, `timeout`, `connect`, `dns`, `address_refused`, `formatter`, …
    error_class: Option<String>,
    error: Option<String>,
    /// The start of the response body.
    response: Option<String>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        Self {
            attempt: a.attempt,
            at: a.at,
            status: a.status,
            latency_ms: a.latency_ms,
            error_class: a.error_class,
            error: a.error,
            response: a.response,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next page.
    next_before: Option<String>,
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Only deliveries in this state.
    state: Option<DeliveryState>,
    /// Only deliveries of this event type.
    event_type: Option<String>,
    /// Only deliveries older than this one (a delivery id).
    before: Option<String>,
    /// Page size (1–200, default 50).
    limit: Option<i64>,
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid { field, message } => ApiError::invalid_field(field, message),
            WebhookError::NotFound(what) => ApiError::not_found(what),
            WebhookError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            WebhookError::Store(e) => e.into(),
        }
    }
}

/// Creates a subscription; the answer carries its secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = SubscriptionRequest,
    responses((status = 201, body = SubscriptionWithSecret), (status = 422, body = super::error::ErrorBody)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SubscriptionRequest>,
) -> Result<(StatusCode, Json<SubscriptionWithSecret>), ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.created", "", "created", None);
    let (record, secret) = state.webhooks.create(req.into(), audit).await?;
    let subscription = record.into();
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionWithSecret { subscription, secret }),
    ))
}

/// Lists subscriptions.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", responses((status = 200, body = SubscriptionList)))]
pub async fn list_webhooks(State(state): State<AppState>, caller: Caller) -> Result<Json<SubscriptionList>, ApiError> {
    caller.require("webhooks:read")?;
    let webhooks = state.store.list_subscriptions().await?;
    Ok(Json(SubscriptionList {
        webhooks: webhooks.into_iter().map(SubscriptionView::from).collect(),
    }))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require("webhooks:read")?;
    Ok(Json(state.webhooks.get(&id).await?.into()))
}

/// Replaces a subscription's settings (its secret and state stay).
#[utoipa::path(put, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = SubscriptionRequest,
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<SubscriptionRequest>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.updated", &id, "updated", None);
    Ok(Json(state.webhooks.update(&id, req.into(), audit).await?.into()))
}

/// Deletes a subscription and its delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.deleted", &id, "deleted", None);
    state.webhooks.delete(&id, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (shown once); the old one keeps signing during the overlap.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", request_body = RotateRequest,
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionWithSecret), (status = 404, body = super::error::ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RotateRequest>,
) -> Result<Json<SubscriptionWithSecret>, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.secret_rotated", &id, "rotated", None);
    let (record, secret) = state.webhooks.rotate(&id, req.overlap_secs, audit).await?;
    let subscription = record.into();
    Ok(Json(SubscriptionWithSecret { subscription, secret }))
}

/// Pauses a subscription: events are recorded and held until it is resumed.
#[utoipa::path(post, path = "/v1/webhooks/{id}/pause", tag = "webhooks", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn pause_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.paused", &id, "paused", None);
    Ok(Json(
        state
            .webhooks
            .set_state(&id, SubscriptionState::Paused, audit)
            .await?
            .into(),
    ))
}

/// Resumes a paused or disabled subscription; held deliveries go out.
#[utoipa::path(post, path = "/v1/webhooks/{id}/resume", tag = "webhooks", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn resume_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.resumed", &id, "resumed", None);
    Ok(Json(
        state
            .webhooks
            .set_state(&id, SubscriptionState::Active, audit)
            .await?
            .into(),
    ))
}

/// Sends a `webhook.test` event to this subscription.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 202), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.test", &id, "queued", None);
    state.webhooks.send_test(&id, audit).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The delivery log of a subscription, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    caller.require("webhooks:read")?;
    state.webhooks.get(&id).await?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be between 1 and 200"));
    }
    let before = match &params.before {
        Some(cursor) => {
            let d = state
                .store
                .get_delivery(&id, cursor)
                .await?
                .ok_or_else(|| ApiError::invalid_field("before", "not a delivery of this subscription"))?;
            Some((d.created_at, d.id))
        }
        None => None,
    };
    let query = DeliveryQuery {
        subscription_id: id,
        state: params.state,
        event_type: params.event_type,
        before,
        limit,
    };
    let found = state.store.list_deliveries(&query).await?;
    let next_before = (found.len() as i64 == limit)
        .then(|| found.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: found.into_iter().map(|d| DeliveryView::of(d, None)).collect(),
        next_before,
    }))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), ("delivery" = String, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    caller.require("webhooks:read")?;
    let found = state
        .store
        .get_delivery(&id, &delivery)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = state.store.list_attempts(&found.id).await?;
    Ok(Json(DeliveryView::of(found, Some(attempts))))
}

/// Sends a delivery again now, with a fresh retry schedule and the same `webhook-id`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), ("delivery" = String, Path, description = "Delivery id")),
    responses((status = 202, body = DeliveryView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    caller.require("webhooks:write")?;
    let audit = caller.actor().audit("webhook.redeliver", &delivery, "queued", None);
    let record = state.webhooks.redeliver(&id, &delivery, audit).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(record, None))))
}
