//! The id of the request being handled: a task-local set by the pipeline for the request's
//! future, read wherever a log line or an error body names the request.

use std::future::Future;

use axum::http::HeaderValue;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being handled ("" outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
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

/// Runs `handled` with `id` as the current request id.
pub(super) async fn scope<F: Future>(id: String, handled: F) -> F::Output {
    REQUEST_ID.scope(id, handled).await
}
