//! HTTP hygiene as a browser and a cache see it: security headers on every answer (errors
//! included), no cross-origin access unless an origin is configured, preflight included.
//! The headers do not depend on the database, so these run on SQLite only.

use reqwest::{Method, StatusCode};

use crate::common::{Db, Gateway, Reply, send};

const CONSOLE: &str = "https://console.example.com";

fn assert_secured(reply: &Reply, what: &str) {
    assert_eq!(reply.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(reply.header("referrer-policy"), "no-referrer", "{what}");
    assert!(
        reply.header("content-security-policy").contains("default-src 'none'"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_api_answers_are_not_stored() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let listing = send(gw.request(Method::GET, "/v1/projects").bearer_auth(&gw.admin_token)).await;
    assert_eq!(listing.status, StatusCode::OK);
    let refused = send(gw.request(Method::GET, "/v1/projects")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let unknown = send(gw.request(Method::GET, "/nowhere")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let health = send(gw.request(Method::GET, "/health")).await;
    for (reply, what) in [
        (&listing, "a listing"),
        (&refused, "a 401"),
        (&unknown, "a 404"),
        (&health, "/health"),
    ] {
        assert_secured(reply, what);
        assert_eq!(reply.header("cache-control"), "no-store", "{what}");
    }
    assert_eq!(
        listing.header("strict-transport-security"),
        "",
        "HSTS only when configured"
    );

    let tls = Gateway::start(Db::Sqlite, "[http]\nhsts = true\n").await;
    let reply = send(tls.request(Method::GET, "/health")).await;
    assert!(
        reply.header("strict-transport-security").starts_with("max-age="),
        "{reply:?}"
    );
}

async fn preflight(gw: &Gateway, origin: &str) -> Reply {
    send(
        gw.request(Method::OPTIONS, "/v1/projects")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_requests_are_refused_unless_the_origin_is_configured() {
    let closed = Gateway::start(Db::Sqlite, "").await;
    let reply = preflight(&closed, CONSOLE).await;
    assert_eq!(reply.header("access-control-allow-origin"), "", "{reply:?}");
    let reply = send(
        closed
            .request(Method::GET, "/v1/projects")
            .header("origin", CONSOLE)
            .bearer_auth(&closed.admin_token),
    )
    .await;
    assert_eq!(reply.header("access-control-allow-origin"), "", "{reply:?}");

    let open = Gateway::start(Db::Sqlite, &format!("[http]\ncors_allowed_origins = [\"{CONSOLE}\"]\n")).await;
    let reply = preflight(&open, CONSOLE).await;
    assert!(reply.status.is_success(), "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), CONSOLE);
    assert!(
        reply.header("access-control-allow-methods").contains("GET"),
        "{reply:?}"
    );
    assert!(
        reply.header("access-control-allow-headers").contains("authorization"),
        "{reply:?}"
    );
    let reply = send(
        open.request(Method::GET, "/v1/projects")
            .header("origin", CONSOLE)
            .bearer_auth(&open.admin_token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), CONSOLE);
    assert!(
        reply.header("access-control-expose-headers").contains("x-request-id"),
        "{reply:?}"
    );
    let other = preflight(&open, "https://evil.example.com").await;
    assert_eq!(other.header("access-control-allow-origin"), "", "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_key_with_the_metrics_scope() {
    let open = Gateway::start(Db::Sqlite, "").await;
    assert_eq!(send(open.request(Method::GET, "/metrics")).await.status, StatusCode::OK);
    let gw = Gateway::start(Db::Sqlite, "auth.metrics_require_key = true\n").await;
    let anonymous = send(gw.request(Method::GET, "/metrics")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["error"]["code"], "unauthorized");
    let (_, reader) = gw
        .key(serde_json::json!({"name": "r", "scopes": ["projects:read"]}))
        .await;
    let unscoped = send(gw.request(Method::GET, "/metrics").bearer_auth(&reader)).await;
    assert_eq!(unscoped.status, StatusCode::FORBIDDEN, "{unscoped:?}");
    let (_, scraper) = gw
        .key(serde_json::json!({"name": "prometheus", "scopes": ["metrics:read"]}))
        .await;
    let scraped = send(gw.request(Method::GET, "/metrics").bearer_auth(&scraper)).await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(scraped.body.as_str().unwrap().contains("rdev_http_requests_total"));
}
