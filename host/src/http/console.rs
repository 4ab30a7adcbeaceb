//! The web console at `/console`: a page, a script and a style sheet embedded in the binary
//! (no CDN, no external fonts), served under a strict Content-Security-Policy (no inline script or
//! style, nothing from elsewhere, no framing). Every call it makes is to the API with the key
//! kept in the tab's `sessionStorage`; `POST /console/session` also sets an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/v1/commands`, because `EventSource` cannot send an
//! `Authorization` header: the gateway accepts it only on the output streams.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

/// The cookie `EventSource` streams are authenticated with.
pub const SESSION_COOKIE: &str = "rdev_session";
/// How long the cookie lives (seconds): a working day.
const SESSION_MAX_AGE: u32 = 12 * 3600;
/// Only the console's own files, and calls to this gateway.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");

/// The console's routes (outside `/v1`: the page needs no key to load).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/console/session", axum::routing::post(sign_in).delete(sign_out))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn cookie(value: &str, max_age: u32, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{SESSION_COOKIE}={value}; Path=/v1/commands; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("rdev_session=; Max-Age=0"))
}

/// Checks the bearer key and sets the stream cookie with it.
async fn sign_in(State(state): State<AppState>, request: axum::extract::Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    let ip = super::context::client_address(&state, headers, request.extensions());
    let principal = super::context::authenticate(&state, headers, ip)
        .await
        .map_err(|(error, _)| error)?;
    let token = super::context::bearer(headers).unwrap_or_default();
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = state.config.http.hsts;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(token, SESSION_MAX_AGE, secure));
    let request_id = super::request_id::current_request_id();
    tracing::info!(%request_id, key_id = %principal.key.id, "console session started");
    Ok(response)
}

/// Clears the stream cookie.
async fn sign_out(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = state.config.http.hsts;
    response.headers_mut().insert(header::SET_COOKIE, cookie("", 0, secure));
    response
}
