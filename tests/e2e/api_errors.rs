//! The HTTP contract around errors: bad bodies, unknown routes and methods, unknown ids and bad
//! query parameters all get the JSON error envelope and change nothing; request ids; health and
//! readiness; and an OpenAPI document that matches the routes the server answers.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Db, Gateway, Reply, send};

/// Every route the server has (host/src/http.rs), as (method, path template).
const ROUTES: [(&str, &str); 42] = [
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/openapi.json"),
    ("get", "/metrics"),
    ("post", "/hooks/claude/{id}/pre-tool-use"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("get", "/v1/keys/{id}"),
    ("delete", "/v1/keys/{id}"),
    ("get", "/v1/projects"),
    ("get", "/v1/projects/{project}"),
    ("post", "/v1/projects/{project}/commands"),
    ("get", "/v1/projects/{project}/commands"),
    ("get", "/v1/commands/{id}"),
    ("post", "/v1/commands/{id}/cancel"),
    ("get", "/v1/commands/{id}/stream"),
    ("get", "/v1/projects/{project}/claude/{type}"),
    ("get", "/v1/projects/{project}/claude/{type}/{name}"),
    ("put", "/v1/projects/{project}/claude/{type}/{name}"),
    ("delete", "/v1/projects/{project}/claude/{type}/{name}"),
    ("get", "/v1/audit"),
    ("get", "/v1/plugins"),
    ("post", "/v1/plugins/reload"),
    ("put", "/v1/plugins/{name}"),
    ("delete", "/v1/plugins/{name}"),
    ("get", "/v1/plugins/{name}/shadow"),
    ("put", "/v1/plugins/{name}/shadow"),
    ("delete", "/v1/plugins/{name}/shadow"),
    ("post", "/v1/plugins/{name}/promote"),
    ("post", "/v1/projects/{project}/explain"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{id}"),
    ("put", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("post", "/v1/webhooks/{id}/rotate-secret"),
    ("post", "/v1/webhooks/{id}/pause"),
    ("post", "/v1/webhooks/{id}/resume"),
    ("post", "/v1/webhooks/{id}/test"),
    ("get", "/v1/webhooks/{id}/deliveries"),
    ("get", "/v1/webhooks/{id}/deliveries/{delivery}"),
    ("post", "/v1/webhooks/{id}/deliveries/{delivery}/redeliver"),
];

/// Asserts the error envelope: status, code, a message, and a request id equal to the header's.
fn assert_envelope(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{what}: {}", reply.body);
    assert!(
        !error["message"].as_str().unwrap_or_default().is_empty(),
        "{what}: {}",
        reply.body
    );
    let request_id = error["request_id"].as_str().unwrap_or_default();
    assert!(!request_id.is_empty(), "{what}: {}", reply.body);
    assert_eq!(reply.header("x-request-id"), request_id, "{what}");
}

/// Sends `body` as it is, with or without a JSON content type.
async fn send_raw(gw: &Gateway, method: Method, path: &str, body: String, json_type: bool) -> Reply {
    let mut req = gw.request(method, path).bearer_auth(&gw.admin_token).body(body);
    if json_type {
        req = req.header("content-type", "application/json");
    }
    send(req).await
}

async fn state_snapshot(gw: &Gateway) -> (Value, Value, Value) {
    let (_, commands) = gw.get("/v1/projects/demo/commands").await;
    let (_, keys) = gw.get("/v1/keys").await;
    let ids = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].clone())
        .collect();
    let (_, item) = gw.get("/v1/projects/demo/claude/commands/x").await;
    (commands, Value::Array(ids), item)
}

async fn bad_bodies_get_the_envelope_and_change_nothing(db: Db) {
    let gw = Gateway::start(db, "max_body_bytes = 2048\n").await;
    let (status, _) = gw
        .call(
            Method::PUT,
            "/v1/projects/demo/claude/commands/x",
            &gw.admin_token,
            Some(json!({"content": "original"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let big = "y".repeat(10 * 1024);
    let endpoints = [
        (
            Method::POST,
            "/v1/projects/demo/commands",
            json!({"kind": "shell", "script": "touch should-not-exist"}),
            json!({"kind": "shell", "script": 5}),
            json!({"kind": "shell", "script": format!("echo {big}")}),
        ),
        (
            Method::POST,
            "/v1/keys",
            json!({"name": "never", "scopes": ["projects:read"]}),
            json!({"name": "never", "scopes": "projects:read"}),
            json!({"name": "never", "scopes": ["projects:read"], "projects": [big]}),
        ),
        (
            Method::PUT,
            "/v1/projects/demo/claude/commands/x",
            json!({"content": "changed"}),
            json!({"content": ["changed"]}),
            json!({"content": big}),
        ),
    ];
    let before = state_snapshot(&gw).await;
    assert_eq!(before.2["content"], "original");
    for (method, path, valid, wrong_type, oversize) in endpoints {
        let what = |case: &str| format!("{method} {path} {case}");
        let mut unknown = valid.clone();
        unknown["surprise"] = json!(true);
        let text = valid.to_string();
        let malformed = &text[..text.len() - 1];
        let cases = [
            (
                malformed.to_owned(),
                true,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "malformed",
            ),
            (
                unknown.to_string(),
                true,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "unknown field",
            ),
            (
                wrong_type.to_string(),
                true,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "wrong type",
            ),
            (
                text.clone(),
                false,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "no type",
            ),
            (
                oversize.to_string(),
                true,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "oversize",
            ),
        ];
        for (body, json_type, status, code, case) in cases {
            let reply = send_raw(&gw, method.clone(), path, body, json_type).await;
            assert_envelope(&reply, status, code, &what(case));
        }
    }
    assert_eq!(state_snapshot(&gw).await, before, "a refused request changed something");
    assert!(!gw.workspaces().join("demo/should-not-exist").exists());
}

async fn unknown_routes_methods_and_ids_get_the_envelope(db: Db) {
    let gw = Gateway::start(db, "").await;
    for path in [
        "/v1/nothing-here",
        "/nothing",
        "/v1/projects/demo/commands/extra/segments",
    ] {
        let reply = send(gw.request(Method::GET, path).bearer_auth(&gw.admin_token)).await;
        assert_envelope(&reply, StatusCode::NOT_FOUND, "not_found", path);
    }
    for (method, path) in [
        (Method::DELETE, "/v1/projects"),
        (Method::PUT, "/v1/keys"),
        (Method::POST, "/health"),
        (Method::PATCH, "/v1/projects/demo/commands"),
    ] {
        let reply = send(gw.request(method.clone(), path).bearer_auth(&gw.admin_token)).await;
        assert_envelope(
            &reply,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} {path}"),
        );
    }
    for (method, path) in [
        (Method::GET, "/v1/commands/cmd_does_not_exist"),
        (Method::GET, "/v1/commands/cmd_does_not_exist/stream"),
        (Method::POST, "/v1/commands/cmd_does_not_exist/cancel"),
        (Method::GET, "/v1/projects/no-such-project"),
        (Method::GET, "/v1/projects/no-such-project/commands"),
    ] {
        let reply = send(gw.request(method.clone(), path).bearer_auth(&gw.admin_token)).await;
        assert_envelope(&reply, StatusCode::NOT_FOUND, "not_found", &format!("{method} {path}"));
    }
}

async fn request_id_is_echoed_when_well_formed_and_generated_otherwise(db: Db) {
    let gw = Gateway::start(db, "").await;
    let ok = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&gw.admin_token)
            .header("x-request-id", "client.Req-1_a"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("x-request-id"), "client.Req-1_a");

    let failed = send(
        gw.request(Method::GET, "/v1/commands/cmd_missing")
            .bearer_auth(&gw.admin_token)
            .header("x-request-id", "client-err-2"),
    )
    .await;
    assert_envelope(&failed, StatusCode::NOT_FOUND, "not_found", "echoed on errors");
    assert_eq!(failed.header("x-request-id"), "client-err-2");

    let unauthenticated = send(
        gw.request(Method::GET, "/v1/projects")
            .header("x-request-id", "client-401"),
    )
    .await;
    assert_envelope(
        &unauthenticated,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "echoed on 401",
    );
    assert_eq!(unauthenticated.header("x-request-id"), "client-401");

    let first = send(gw.request(Method::GET, "/v1/projects").bearer_auth(&gw.admin_token)).await;
    let second = send(
        gw.request(Method::GET, "/v1/commands/cmd_missing")
            .bearer_auth(&gw.admin_token),
    )
    .await;
    assert!(!first.header("x-request-id").is_empty());
    assert_envelope(&second, StatusCode::NOT_FOUND, "not_found", "generated on errors");
    assert_ne!(first.header("x-request-id"), second.header("x-request-id"));

    let too_long = "r".repeat(65);
    for bad in ["has space", "semi;colon", "a/b", "", too_long.as_str()] {
        let reply = send(
            gw.request(Method::GET, "/v1/commands/cmd_missing")
                .bearer_auth(&gw.admin_token)
                .header("x-request-id", bad),
        )
        .await;
        assert_envelope(&reply, StatusCode::NOT_FOUND, "not_found", bad);
        let id = reply.header("x-request-id");
        assert!(!id.is_empty() && id != bad, "{bad:?} must be replaced, got {id:?}");
    }
}

async fn bad_query_parameters_are_rejected_with_400(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw.shell("demo", "true").await;
    gw.wait_done(&id).await;
    let paths = [
        "/v1/projects/demo/commands?limit=0".to_owned(),
        "/v1/projects/demo/commands?limit=201".to_owned(),
        "/v1/projects/demo/commands?limit=ten".to_owned(),
        "/v1/projects/demo/commands?state=bogus".to_owned(),
        "/v1/projects/demo/commands?colour=blue".to_owned(),
        "/v1/projects/demo/commands?before=yesterday".to_owned(),
        "/v1/audit?limit=0".to_owned(),
        "/v1/audit?limit=501".to_owned(),
        "/v1/audit?since=yesterday".to_owned(),
        "/v1/audit?colour=blue".to_owned(),
        format!("/v1/commands/{id}/stream?colour=blue"),
    ];
    for path in paths {
        let reply = send(gw.request(Method::GET, &path).bearer_auth(&gw.admin_token)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.body);
        assert_envelope(&reply, StatusCode::BAD_REQUEST, "bad_query", &path);
    }
    let (status, list) = gw.get("/v1/projects/demo/commands?limit=1&state=succeeded").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["commands"][0]["id"], id.as_str());
}

async fn health_and_readiness_report_ok(db: Db) {
    let gw = Gateway::start(db, "").await;
    let health = send(gw.request(Method::GET, "/health")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = send(gw.request(Method::GET, "/ready")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["database"]["ok"], true, "{}", ready.body);
    assert_eq!(ready.body["backend"]["ok"], true, "{}", ready.body);
}

async fn metrics_count_requests_and_commands(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw.shell("demo", "echo hi").await;
    gw.wait_done(&id).await;
    let (status, _) = gw.get("/v1/projects/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let running = gw.shell("demo", "sleep 30").await;
    let url = format!("{}/v1/commands/{running}/stream", gw.url);
    let stream = crate::common::sse::SseStream::open(&url, &gw.admin_token, None).await;
    assert_eq!(stream.status, StatusCode::OK);
    let metrics = send(gw.request(Method::GET, "/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().expect("plain text").to_owned();
    for expected in [
        "rdev_commands_accepted_total 2",
        "rdev_commands_finished_total{state=\"succeeded\"} 1",
        "rdev_http_requests_total{method=\"GET\",route=\"/v1/projects/{project}\",status=\"404\"} 1",
        "rdev_streams_open 1",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(!text.contains(&gw.admin_token));
    drop(stream);
    crate::common::wait_until(std::time::Duration::from_secs(10), || async {
        let text = send(gw.request(Method::GET, "/metrics")).await.body;
        text.as_str().is_some_and(|t| t.contains("rdev_streams_open 0"))
    })
    .await;
}

async fn openapi_document_matches_the_routes_the_server_answers(db: Db) {
    let gw = Gateway::start(db, "").await;
    let doc = send(gw.request(Method::GET, "/openapi.json")).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().keys();
            methods
                .filter(|m| ["get", "put", "post", "delete", "patch", "head", "options"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let undocumented: Vec<_> = expected.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&expected).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    assert!(
        unlisted.is_empty(),
        "documented routes missing from this test's table: {unlisted:?}"
    );

    let command = gw.shell("demo", "echo hi").await;
    gw.wait_done(&command).await;
    let (throwaway, _) = gw.key(json!({"name": "to-revoke", "scopes": ["projects:read"]})).await;
    for (method, template) in ROUTES {
        let id = if template.starts_with("/v1/keys") {
            &throwaway
        } else {
            &command
        };
        let path = template
            .replace("{id}", id)
            .replace("{project}", "demo")
            .replace("{type}", "commands")
            .replace("{name}", "x");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let what = format!("{method} {path}");
        if template.starts_with("/v1/") {
            let anonymous = send(gw.request(method.clone(), &path)).await;
            assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{what} must require a key");
        }
        let reply = send(gw.request(method.clone(), &path).bearer_auth(&gw.admin_token)).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{what}: {}", reply.body);
        let route_missing =
            reply.status == StatusCode::NOT_FOUND && reply.body["error"]["message"] == "route not found";
        assert!(!route_missing, "{what} is not routed");
    }
}

/// The document passes the reference validator (PyPI `openapi-spec-validator`, which
/// `scripts/test.sh` installs when it is missing); the database cannot change it.
#[tokio::test]
async fn openapi_document_passes_openapi_spec_validator() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let doc = send(gw.request(Method::GET, "/openapi.json")).await;
    assert_eq!(doc.status, StatusCode::OK);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.body.to_string()).unwrap();
    let checked = std::process::Command::new("openapi-spec-validator")
        .arg(file.path())
        .output()
        .expect("openapi-spec-validator is installed (scripts/test.sh installs it)");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Every route, parameter, request body and error answer is described, with the limit headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_parameter_error_and_limit_header() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let doc = send(gw.request(Method::GET, "/openapi.json")).await.body;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(declared.contains(&name), "{method} {path} does not declare `{name}`");
            }
            assert!(responses.contains_key("500"), "{method} {path}");
            if !path.starts_with("/v1/") {
                continue;
            }
            let mut expected = vec!["401", "403", "429", "503"];
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            for status in expected {
                let response = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path}: no {status}"));
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
            }
            assert!(
                responses["429"]["headers"].get("Retry-After").is_some(),
                "{method} {path}"
            );
            for (status, response) in responses {
                assert!(
                    response["headers"].get("X-RateLimit-Remaining").is_some(),
                    "{method} {path} {status} lacks the rate-limit headers"
                );
            }
        }
    }
}

crate::on_both_databases!(
    bad_bodies_get_the_envelope_and_change_nothing,
    unknown_routes_methods_and_ids_get_the_envelope,
    request_id_is_echoed_when_well_formed_and_generated_otherwise,
    bad_query_parameters_are_rejected_with_400,
    health_and_readiness_report_ok,
    openapi_document_matches_the_routes_the_server_answers,
    metrics_count_requests_and_commands,
);
