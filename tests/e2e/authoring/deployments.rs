//! `PUT /v1/plugins/{name}` and `DELETE …`: a component deployed into a running gateway is
//! checked before anything is written, serves beside the defaults before the answer, survives a
//! restart and is removed again; a directory that cannot be written is a retryable 503 that
//! heals once it can.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::plugins::test_plugin;
use crate::common::{Db, Gateway, Reply, send};

async fn deploy(gw: &Gateway, name: &str, plugin: &str, query: &str, token: &str) -> (StatusCode, Value) {
    let reply = deploy_reply(gw, name, plugin, query, token).await;
    (reply.status, reply.body)
}

async fn deploy_reply(gw: &Gateway, name: &str, plugin: &str, query: &str, token: &str) -> Reply {
    let wasm = std::fs::read(test_plugin(plugin)).unwrap();
    send(
        gw.client
            .put(format!("{}/v1/plugins/{name}?{query}", gw.url))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(wasm),
    )
    .await
}

async fn force_push(gw: &Gateway) -> (StatusCode, Value) {
    gw.post(
        "/v1/projects/demo/commands",
        json!({"kind": "git", "args": ["push", "--force", "origin", "main"]}),
    )
    .await
}

fn names(plugins: &Value) -> Vec<String> {
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_plugin_serves_survives_a_restart_and_is_removed() {
    let mut gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let token = gw.admin_token.clone();
    assert_eq!(force_push(&gw).await.0, StatusCode::ACCEPTED);

    let (status, body) = deploy(&gw, "guard", "force_push_guard", "order=5", &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["created"].clone(), body["plugin"]["state"].clone()),
        (json!(true), json!("active")),
        "{body}"
    );
    assert_eq!(
        body["plugin"]["world"], "command-sanitizer",
        "the world is read from the component: {body}"
    );
    let (status, body) = force_push(&gw).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`guard`"), "{body}");
    let (status, body) = deploy(&gw, "guard", "force_push_guard", "", &token).await;
    assert_eq!(
        (status, body["created"].clone()),
        (StatusCode::OK, json!(false)),
        "{body}"
    );
    let deployed = gw.audit("action=plugin.deployed").await;
    assert_eq!(deployed.len(), 2, "{deployed:?}");
    assert_eq!(deployed[0]["outcome"], "replaced");

    gw.restart();
    let (_, plugins) = gw.get("/v1/plugins").await;
    assert!(names(&plugins).contains(&"guard".to_owned()) && names(&plugins).contains(&"shell-sanitizer".to_owned()));
    assert_eq!(
        force_push(&gw).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "still deployed after a restart"
    );

    let reply = send(
        gw.client
            .delete(format!("{}/v1/plugins/guard", gw.url))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(force_push(&gw).await.0, StatusCode::ACCEPTED);
    let (_, plugins) = gw.get("/v1/plugins").await;
    assert!(!names(&plugins).contains(&"guard".to_owned()));
    let reply = send(
        gw.client
            .delete(format!("{}/v1/plugins/guard", gw.url))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_checked_before_anything_is_written() {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let token = gw.admin_token.clone();
    let refusals = [
        (
            "guard",
            "force_push_guard",
            "world=request-validator",
            StatusCode::UNPROCESSABLE_ENTITY,
            "plugin_refused",
        ),
        (
            "picky",
            "deny_configure",
            "config=%7B%22reject%22%3Atrue%7D",
            StatusCode::UNPROCESSABLE_ENTITY,
            "plugin_refused",
        ),
        (
            "guard",
            "force_push_guard",
            "config=%7Bnot",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "guard",
            "force_push_guard",
            "deadline_ms=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_manifest",
        ),
        (
            "shell-sanitizer",
            "force_push_guard",
            "",
            StatusCode::CONFLICT,
            "configured_plugin",
        ),
        (
            ".hidden",
            "force_push_guard",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_manifest",
        ),
    ];
    for (name, plugin, query, expected, code) in refusals {
        let (status, body) = deploy(&gw, name, plugin, query, &token).await;
        assert_eq!(status, expected, "{name} {query}: {body}");
        assert_eq!(body["error"]["code"], code, "{name} {query}: {body}");
    }
    let (_, reader) = gw
        .key(json!({"name": "reader", "scopes": ["config:write", "audit:read"]}))
        .await;
    let (status, body) = deploy(&gw, "guard", "force_push_guard", "", &reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admin only: {body}");
    let (status, body) = gw.call(Method::PUT, "/v1/plugins/guard", &token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!gw.dir.join("data/plugins/guard.plugin.toml").exists());
    assert!(!gw.dir.join("data/plugins/picky.wasm").exists());
    assert_eq!(
        force_push(&gw).await.0,
        StatusCode::ACCEPTED,
        "nothing refused went live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_cannot_be_written_is_a_retryable_503_until_it_can() {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let blocker = gw.dir.join("data/plugins");
    std::fs::write(&blocker, "a file where the directory of deployed plugins goes").unwrap();
    let reply = deploy_reply(&gw, "guard", "force_push_guard", "", &gw.admin_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "install_failed", "{}", reply.body);
    assert_eq!(reply.header("retry-after"), "5");
    assert_eq!(force_push(&gw).await.0, StatusCode::ACCEPTED);
    std::fs::remove_file(&blocker).unwrap();
    let (status, body) = deploy(&gw, "guard", "force_push_guard", "", &gw.admin_token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(force_push(&gw).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}
