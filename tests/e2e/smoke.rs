//! The README walk-through: a git command and a shell script in `demo`, streamed and resumed.

use serde_json::json;

use crate::common::sse::{SseStream, output_text};
use crate::common::{Db, Gateway};

async fn runs_git_and_shell_in_demo_and_resumes_streams(db: Db) {
    let gw = Gateway::start(db, "").await;
    let git = gw
        .run("demo", json!({"kind": "git", "args": ["log", "--oneline"]}))
        .await;
    let url = format!("{}/v1/commands/{}/stream", gw.url, git["id"].as_str().unwrap());
    let events = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert!(output_text(&events).contains("Initial commit"), "{events:?}");
    assert_eq!(events.last().unwrap().event, "end");
    assert_eq!(events.last().unwrap().data["state"], "succeeded");

    let id = gw
        .shell(
            "demo",
            "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exit 3",
        )
        .await;
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let all = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    let end = all.last().unwrap();
    assert_eq!(
        (
            end.event.as_str(),
            end.data["state"].as_str(),
            end.data["exit_code"].as_i64()
        ),
        ("end", Some("failed"), Some(3))
    );
    let resumed = SseStream::open(&url, &gw.admin_token, Some("1")).await.collect().await;
    assert_eq!(resumed.len(), all.len() - 1);
    assert_eq!(resumed, all[1..]);
}

crate::on_both_databases!(runs_git_and_shell_in_demo_and_resumes_streams);
