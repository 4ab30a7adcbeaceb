//! The request pipeline, one layer for every route: the request id (taken from a well-formed
//! `X-Request-Id` or generated, echoed on every response, available to error bodies through
//! [`super::request_id`]), authentication and rate limiting of every `/v1` route, the audit record
//! of every authenticated mutating request, and request metrics and logs. One layer rather than several because each
//! layer costs a boxed future and a service clone per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::request_id::{REQUEST_ID_HEADER, current_request_id, current_trace_id, new_request_id, usable_request_id};
use crate::auth::{AuthError, Principal};
use crate::commands::Actor;
use crate::limits::{Budget, Exceeded};
use crate::store::AuditEntry;
use crate::telemetry::traces;

/// Runs a request through the pipeline described at the top of this module.
pub async fn pipeline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(usable_request_id)
        .unwrap_or_else(new_request_id);
    // A span per request costs more than the rest of this layer, so it exists only at debug
    // level (then every event inside carries the id); at info level the events a request can
    // cause carry `request_id` themselves.
    let span = tracing::debug_span!("request", request_id = %id);
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let (trace, trace_id) = traces::request_span(&method, &route, &path, req.headers());
    let started = Instant::now();
    let handled = async {
        if route.starts_with("/v1/") {
            authenticated(&state, &route, req, next).await
        } else {
            next.run(req).await
        }
    };
    // The trace span is the inner one, so that it is the current span wherever the handler opens
    // child spans, also when the debug-level log span is on.
    let handled = handled.instrument(trace.clone()).instrument(span.clone());
    let mut response = super::request_id::scope(id.clone(), trace_id.clone(), handled).await;
    let metrics = &state.metrics;
    let status = response.status();
    traces::record_status(&trace, status.as_u16());
    metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    // Successful requests are logged at debug (as tower-http's TraceLayer does); metrics count
    // them all. Failures are logged at info with their request id.
    let elapsed_ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| {
        if status.is_client_error() || status.is_server_error() {
            let trace_id = trace_id.as_deref();
            tracing::info!(request_id = %id, trace_id, %method, path, status = status.as_u16(), elapsed_ms, "handled");
        } else {
            tracing::debug!(%method, path, status = status.as_u16(), elapsed_ms, "handled");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    super::hygiene::secure(response.headers_mut(), state.config.http.hsts);
    response
}

/// The client's address: the socket's peer, or what a trusted proxy says it forwarded for.
pub fn client_address(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    crate::auth::client_ip(peer, forwarded, &state.config.auth.trusted_proxies)
}

/// A refusal at the door, with the failed-authentication budget of the client's network.
pub type Refused = (ApiError, Option<Budget>);

impl From<Exceeded> for (ApiError, Option<Budget>) {
    fn from(exceeded: Exceeded) -> Self {
        let budget = exceeded.budget;
        (exceeded.into(), budget)
    }
}

/// Authenticates a request's bearer token, used from `ip`, unless the client's network failed
/// too often lately (then its token is not even looked at).
pub async fn authenticate(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<Principal, Refused> {
    authenticate_token(state, bearer(headers), ip).await
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The console's session cookie, accepted only on `GET` of an output stream: `EventSource`
/// cannot send a header, and a stream changes nothing (the cookie is `SameSite=Strict` too).
fn stream_cookie<'a>(route: &str, method: &axum::http::Method, headers: &'a HeaderMap) -> Option<&'a str> {
    if route != "/v1/commands/{id}/stream" || method != axum::http::Method::GET {
        return None;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == super::console::SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Authenticates `token` (none: refused as missing), used from `ip`, unless the client's network
/// failed too often lately.
async fn authenticate_token(state: &AppState, token: Option<&str>, ip: IpAddr) -> Result<Principal, Refused> {
    state.limits.admit_client(ip)?;
    let outcome = match token {
        Some(token) => state.auth.authenticate(token, ip).await,
        None => Err(AuthError::Missing),
    };
    outcome.map_err(|e| {
        state.metrics.auth_failures.with_label_values(&[e.reason()]).inc();
        tracing::info!(request_id = %current_request_id(), trace_id = current_trace_id().as_deref(), reason = %e,
            client_ip = %ip, "authentication refused");
        let budget = match e {
            AuthError::Unavailable => None,
            _ => state.limits.authentication_failed(ip),
        };
        (e.into(), budget)
    })
}

/// Authenticates the bearer token and admits the request under the key's rate limit, then
/// serves it; every answer carries the `X-RateLimit-*` headers of the bucket that judged it.
async fn authenticated(state: &AppState, route: &str, req: Request, next: Next) -> Response {
    let ip = client_address(state, req.headers(), req.extensions());
    let span = tracing::info_span!(target: traces::TARGET, "authenticate", rdev.key_id = tracing::field::Empty);
    let token = bearer(req.headers()).or_else(|| stream_cookie(route, req.method(), req.headers()));
    let authenticated = authenticate_token(state, token, ip).instrument(span.clone()).await;
    if let Ok(principal) = &authenticated {
        span.record("rdev.key_id", principal.key.id.as_str());
    }
    let admitted = match authenticated {
        Ok(principal) => match state
            .limits
            .admit_request(&principal.key, state.replica.live_replicas())
        {
            Ok(budget) => Ok((principal, budget)),
            Err(exceeded) => Err(exceeded.into()),
        },
        Err(refused) => Err(refused),
    };
    match admitted {
        Ok((principal, budget)) => with_budget(serve(state, route, principal, req, next).await, budget),
        Err((error, budget)) => with_budget(error.into_response(), budget),
    }
}

const RATE_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const RATE_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RATE_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn with_budget(mut response: Response, budget: Option<Budget>) -> Response {
    if let Some(budget) = budget {
        let headers = response.headers_mut();
        headers.insert(RATE_LIMIT, number(budget.limit.into()));
        headers.insert(RATE_REMAINING, number(budget.remaining.into()));
        headers.insert(RATE_RESET, number(budget.reset_secs));
    }
    response
}

/// A number as a header value. Those below 1024 (most budgets) are made once: a clone costs no
/// allocation, and every `/v1` answer carries three.
fn number(n: u64) -> HeaderValue {
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let small = SMALL.get_or_init(|| (0..1024u64).map(HeaderValue::from).collect());
    usize::try_from(n)
        .ok()
        .and_then(|i| small.get(i))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(n))
}

/// Serves an authenticated request, and appends an audit event with the outcome of every
/// mutating one.
async fn serve(state: &AppState, route: &str, principal: Principal, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    let action = format!("{} {route}", req.method());
    let target = req.uri().path().to_owned();
    let mut entry = actor_of(&principal).audit(&action, &target, "", None);
    req.extensions_mut().insert(RequestAudit(entry.clone()));
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    if response.extensions().get::<RequestAudited>().is_some() {
        return response;
    }
    entry.outcome = response.status().as_str().to_owned();
    entry.at = crate::time::now_ms();
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(request_id = %current_request_id(), trace_id = current_trace_id().as_deref(), error = %e,
            "could not append audit event");
    }
    response
}

fn actor_of(principal: &Principal) -> Actor {
    Actor {
        key_id: Some(principal.key.id.clone()),
        client_ip: Some(principal.client_ip.to_string()),
        request_id: Some(current_request_id()),
        trace_id: current_trace_id(),
    }
}

/// The audit row of the mutating request being served (its outcome not set yet), for a
/// handler that commits it together with its own change.
#[derive(Debug, Clone)]
struct RequestAudit(AuditEntry);

/// In an answer's extensions: the handler committed the request's audit row itself, so the
/// pipeline writes none.
#[derive(Debug, Clone, Copy)]
pub struct RequestAudited;

/// The authenticated caller of a handler.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key and address.
    pub principal: Principal,
    request_audit: Option<AuditEntry>,
}

impl Caller {
    /// The audit row of this (mutating) request, for a handler that commits it with its own
    /// change and then answers with [`RequestAudited`].
    pub fn request_audit(&self) -> Option<AuditEntry> {
        self.request_audit.clone()
    }

    /// The caller, for audit entries.
    pub fn actor(&self) -> Actor {
        actor_of(&self.principal)
    }

    /// Fails with 403 unless the key has `scope`.
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        Ok(self.principal.require(scope)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let principal = parts.extensions.get::<Principal>().cloned().ok_or(AuthError::Missing)?;
        let request_audit = parts.extensions.get::<RequestAudit>().map(|r| r.0.clone());
        Ok(Self {
            principal,
            request_audit,
        })
    }
}
