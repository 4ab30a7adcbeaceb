//! Explain: what a command request would meet, with nothing queued, run or audited as a command.

use serde_json::{Value, json};

use crate::common::plugins::{default_plugin, entry, sanitizer, test_plugin};
use crate::common::{Db, Gateway};
use reqwest::StatusCode;

/// The default validator and sanitizer, and `pager-off`, which rewrites `git` commands.
async fn with_rewriter() -> Gateway {
    let config = [
        entry(
            "request-validator",
            "request-validator",
            &default_plugin("request_validator"),
            "",
        ),
        sanitizer("shell-sanitizer", &default_plugin("shell_sanitizer"), ""),
        sanitizer("pager-off", &test_plugin("pager_off"), "order = 1"),
    ]
    .concat();
    Gateway::start_with_plugins(Db::Sqlite, &config).await
}

fn steps(explained: &Value) -> Vec<(String, String, String)> {
    explained["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let field = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (field("stage"), field("plugin"), field("verdict"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_each_decision_and_creates_nothing() {
    let gw = with_rewriter().await;
    let (status, refused) = gw
        .post(
            "/v1/projects/demo/explain",
            json!({"kind": "shell", "script": "ls; rm -rf /"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["status"], 422);
    assert_eq!(refused["error"]["code"], "denied_by_policy");
    let taken = steps(&refused);
    assert!(
        taken.contains(&("validator".into(), "request-validator".into(), "valid".into())),
        "{refused}"
    );
    assert!(
        taken.contains(&("sanitizer".into(), "shell-sanitizer".into(), "deny".into())),
        "{refused}"
    );
    let denial = refused["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["verdict"] == "deny")
        .unwrap();
    assert!(denial["reason"].as_str().is_some_and(|r| !r.is_empty()), "{denial}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(denial["reason"].as_str().unwrap())
    );

    let (status, allowed) = gw
        .post(
            "/v1/projects/demo/explain",
            json!({"kind": "git", "args": ["status"], "env": {"GIT_AUTHOR_NAME": "hidden-value"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{allowed}");
    assert_eq!(allowed["outcome"], "queued");
    assert_eq!(allowed["status"], 202);
    assert_eq!(allowed["command"]["args"], json!(["--no-pager", "status"]), "{allowed}");
    let rewrite = allowed["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["verdict"] == "rewrite")
        .expect("pager-off rewrote it");
    assert_eq!(rewrite["plugin"], "pager-off");
    assert_eq!(rewrite["rewrite"]["args"], json!(["--no-pager", "status"]));
    let sanitizers = steps(&allowed)
        .into_iter()
        .filter(|(stage, ..)| stage == "sanitizer")
        .count();
    assert_eq!(sanitizers, 4, "after the rewrite the chain judges again: {allowed}");
    assert!(
        !allowed.to_string().contains("hidden-value"),
        "env values are redacted: {allowed}"
    );

    let (status, commands) = gw.get("/v1/projects/demo/commands").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(commands["commands"], json!([]), "explain queues nothing");
    assert!(
        gw.audit("action=command.rejected").await.is_empty(),
        "no command is audited"
    );
    assert!(gw.audit("action=command.accepted").await.is_empty());
    let rows = gw.audit("limit=200").await;
    let explained = rows.iter().filter(|r| r.to_string().contains("/explain")).count();
    assert_eq!(explained, 2, "each explain call is audited: {rows:?}");
}
