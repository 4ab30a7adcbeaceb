//! HTTP hygiene: the security headers of every response, and CORS for the configured origins
//! only (off by default).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);
/// Nothing the API answers is a page to render, frame or load resources for.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Adds the security headers. A handler's own `Cache-Control` (the output streams') and
/// Content-Security-Policy (the console's) are kept;
/// everything else must not be stored by caches, since API answers depend on the key.
pub fn secure(headers: &mut HeaderMap, hsts: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The console's pages carry their own policy; everything else renders nothing.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    if hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
pub fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("`{origin}` is not an origin (http:// or https://, then a host)"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err(format!(
            "`{origin}` is not an origin: a scheme and host (and port) only, no path or wildcard"
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| format!("`{origin}` is not a valid header value"))
}

/// The CORS layer for `origins`; none when the list is empty, so that no cross-origin request
/// is allowed.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| parse_origin(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    let exposed = [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
    .map(HeaderName::from_static);
    let allowed = [header::AUTHORIZATION, header::CONTENT_TYPE]
        .into_iter()
        .chain(["idempotency-key", "last-event-id", "x-request-id"].map(HeaderName::from_static));
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers(allowed.collect::<Vec<_>>())
            .expose_headers(exposed)
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_and_a_host_only() {
        for good in ["https://console.example.com", "http://localhost:3000"] {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "console.example.com",
            "https://",
            "https://a.example/path",
            "https://*.example.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_answers_are_never_stored_but_streams_keep_their_cache_control() {
        let mut headers = HeaderMap::new();
        secure(&mut headers, false);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        let mut stream = HeaderMap::new();
        stream.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        secure(&mut stream, true);
        assert_eq!(stream[header::CACHE_CONTROL], "no-cache");
        assert_eq!(stream[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }
}
