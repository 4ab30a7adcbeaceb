//! The one HTTP error type and its JSON envelope:
//! `{"error": {"code", "message", "request_id", "fields"?}}`. Details of internal failures go to
//! the log, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::request_id::{current_request_id, current_trace_id};
use crate::auth::AuthError;
use crate::commands::CommandError;
use crate::exec::ExecError;
use crate::limits::{Exceeded, LimitKind};
use crate::plugins::{Decision, FieldError, Refusal};
use crate::store::{Fault, StoreError};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Field errors, for validation failures.
    pub fields: Vec<FieldError>,
    /// Plugin decisions, for requests a policy refused.
    pub decisions: Vec<Decision>,
    /// Seconds after which a retry may succeed (`Retry-After`), for faults that pass.
    pub retry_after: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    decisions: Vec<Decision>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            decisions: Vec::new(),
            retry_after: None,
        }
    }

    /// 503 for a fault that passes: a retry after `retry_after` seconds may succeed.
    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a resource (also used for resources the key may not see).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 422 with one field error.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: {message}"),
        );
        e.fields.push(FieldError {
            field: field.to_owned(),
            message,
        });
        e
    }

    /// 500; the cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %current_request_id(), trace_id = current_trace_id().as_deref(), error = %cause,
            "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl ApiError {
    /// The envelope, as JSON text, naming `request_id`.
    fn body(self, request_id: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                request_id,
                fields: self.fields,
                decisions: self.decisions,
            },
        }
    }

    /// The envelope's JSON text, for answers written below the router (no request is in scope
    /// there, so the caller names the request id).
    pub(crate) fn envelope_text(self, request_id: &str) -> String {
        serde_json::to_string(&self.body(request_id.to_owned())).unwrap_or_default()
    }

    /// The whole response, naming `request_id`.
    pub(crate) fn into_response_for(self, request_id: String) -> Response {
        let (status, retry_after) = (self.status, self.retry_after);
        let mut response = (status, axum::Json(self.body(request_id))).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_for(current_request_id())
    }
}

/// Seconds a client is asked to wait after a storage fault.
const STORE_RETRY_AFTER: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.fault() {
            Fault::Unavailable => {
                tracing::warn!(request_id = %current_request_id(), trace_id = current_trace_id().as_deref(), error = %e,
                    "storage unavailable");
                Self::unavailable("unavailable", e.summary(), STORE_RETRY_AFTER)
            }
            Fault::Internal => Self::internal(&e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code) = match e {
            AuthError::Missing | AuthError::Invalid | AuthError::Revoked | AuthError::Expired => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            AuthError::Network | AuthError::Scope(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AuthError::Unavailable => {
                return Self::unavailable("unavailable", "the key store is unavailable", STORE_RETRY_AFTER);
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<Exceeded> for ApiError {
    fn from(e: Exceeded) -> Self {
        let code = match e.kind {
            LimitKind::Requests | LimitKind::Commands | LimitKind::AuthFailures => "rate_limited",
            LimitKind::Streams => "too_many_streams",
            LimitKind::Queue => "queue_full",
        };
        Self {
            retry_after: Some(e.retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, e.message)
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::Denied { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "denied_by_policy", message),
            Refusal::Invalid { errors, .. } => Self {
                fields: errors,
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            },
            Refusal::Failed(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "policy_failed", message),
            Refusal::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "policy_unavailable", message),
            Refusal::Overloaded(_) => Self::unavailable("overloaded", message, 1),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Invalid(spec) => Self::invalid_field(spec.field, spec.message),
            CommandError::Refused(refusal, decisions) => Self {
                decisions,
                ..refusal.into()
            },
            CommandError::IdempotencyConflict => Self::new(StatusCode::CONFLICT, "idempotency_conflict", e.to_string()),
            CommandError::SessionNotFound(_) => Self::new(StatusCode::NOT_FOUND, "session_not_found", e.to_string()),
            CommandError::SessionBusy(_) => Self::new(StatusCode::CONFLICT, "session_busy", e.to_string()),
            CommandError::AlreadyEnded(_) => Self::new(StatusCode::CONFLICT, "already_ended", e.to_string()),
            CommandError::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", e.to_string()),
            CommandError::BackendUnavailable(why) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable", why)
            }
            CommandError::QueueFull(_) => Self {
                retry_after: Some(crate::limits::QUEUE_FULL_RETRY_SECS),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", e.to_string())
            },
            CommandError::Store(e) => e.into(),
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::NotFound => Self::not_found("item"),
            ExecError::Unsafe(why) => Self::new(StatusCode::CONFLICT, "unsafe_workspace", why),
            ExecError::Unavailable(why) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable", why),
            ExecError::Remote(why) => Self::new(StatusCode::BAD_GATEWAY, "backend_failed", why),
            other => Self::internal(&other),
        }
    }
}
