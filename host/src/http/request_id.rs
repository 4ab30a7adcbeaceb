//! The ids of the request being handled (its request id and, while traces are exported, its
//! trace id): a task-local set by the pipeline for the request's future, read wherever a log
//! line, an audit row or an error body names the request.

use std::future::Future;

use axum::http::HeaderValue;

struct RequestIds {
    request_id: String,
    trace_id: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestIds;
}

/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being handled ("" outside a request).
pub fn current_request_id() -> String {
    REQUEST.try_with(|ids| ids.request_id.clone()).unwrap_or_default()
}

/// The trace id of the request being handled, while traces are exported.
pub fn current_trace_id() -> Option<String> {
    REQUEST.try_with(|ids| ids.trace_id.clone()).ok().flatten()
}

/// 128 random bits from the thread-local generator (no system call per request).
pub(crate) fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A client's `X-Request-Id`, if it is short and made of safe characters.
pub(super) fn usable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| text.to_owned())
}

/// Runs `handled` with `request_id` and `trace_id` as the current request's.
pub(super) async fn scope<F: Future>(request_id: String, trace_id: Option<String>, handled: F) -> F::Output {
    REQUEST.scope(RequestIds { request_id, trace_id }, handled).await
}
