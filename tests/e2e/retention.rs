//! Retention: the output of ended commands past their project's age or beyond its size is
//! deleted in the background (the commands that finished first go first, running commands are
//! never touched), and so are old audit rows; what the policy keeps stays exact.

use std::time::Duration;

use crate::common::sse::{collect_whole, output_text};
use crate::common::{Db, Gateway, wait_until};

async fn stored_text(gw: &Gateway, id: &str) -> String {
    output_text(&collect_whole(&format!("{}/v1/commands/{id}/stream", gw.url), &gw.admin_token).await)
}

async fn the_oldest_output_goes_beyond_the_projects_size(db: Db) {
    let config = "retention.interval_secs = 1\n[projects.demo]\noutput_max_bytes = 3000\n";
    let gw = Gateway::start(db, config).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = gw
            .shell("demo", &format!("head -c 1200 /dev/zero | tr '\\0' {i}"))
            .await;
        gw.wait_done(&id).await;
        ids.push(id);
    }
    let running = gw.shell("demo", "head -c 5000 /dev/zero | tr '\\0' r; sleep 30").await;
    wait_until(Duration::from_secs(30), || async {
        stored_text(&gw, &ids[1]).await.is_empty()
    })
    .await;
    assert_eq!(stored_text(&gw, &ids[0]).await, "", "the first to finish goes first");
    for (i, id) in ids.iter().enumerate().skip(2) {
        assert_eq!(
            stored_text(&gw, id).await,
            i.to_string().repeat(1200),
            "kept output changed"
        );
    }
    let (_, cmd) = gw.get(&format!("/v1/commands/{}", ids[0])).await;
    assert_eq!(cmd["state"], "succeeded", "the record stays: {cmd}");
    // The running command's output counts for nothing and is never touched.
    let url = format!("{}/v1/commands/{running}/stream", gw.url);
    let mut live = crate::common::sse::SseStream::open(&url, &gw.admin_token, None).await;
    let first = live.next().await.expect("the running command's output");
    assert!(first.data["text"].as_str().unwrap().starts_with('r'), "{first:?}");
}

async fn old_output_and_audit_rows_go_after_their_age(db: Db) {
    // Ages long enough that a command checked right after it ends is surely still young.
    let config = "retention.interval_secs = 1\nretention.audit_max_age_secs = 12\n\
                  [projects.demo]\noutput_max_age_secs = 10\n";
    let gw = Gateway::start(db, config).await;
    let id = gw.shell("demo", "echo soon gone").await;
    gw.wait_done(&id).await;
    assert_eq!(stored_text(&gw, &id).await, "soon gone\n");
    assert!(!gw.audit(&format!("target={id}")).await.is_empty());
    wait_until(Duration::from_secs(30), || async {
        stored_text(&gw, &id).await.is_empty()
    })
    .await;
    wait_until(Duration::from_secs(30), || async {
        gw.audit(&format!("target={id}")).await.is_empty()
    })
    .await;
    let fresh = gw.shell("demo", "echo still here").await;
    gw.wait_done(&fresh).await;
    assert_eq!(stored_text(&gw, &fresh).await, "still here\n", "fresh output is kept");
}

crate::on_both_databases!(
    the_oldest_output_goes_beyond_the_projects_size,
    old_output_and_audit_rows_go_after_their_age,
);
