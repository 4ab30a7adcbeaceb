//! The per-project queue: concurrency limits, priority, FIFO order, and cancelling queued commands.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::sse::SseStream;
use crate::common::{Db, Gateway, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// A script that waits until `gate` exists in the workspace.
fn blocked_on(gate: &str) -> String {
    format!("while [ ! -f {gate} ]; do sleep 0.05; done")
}

fn demo_file(gw: &Gateway, name: &str) -> PathBuf {
    gw.workspaces().join("demo").join(name)
}

fn touch(gw: &Gateway, name: &str) {
    std::fs::write(demo_file(gw, name), "").unwrap();
}

/// How many of the demo commands are in `state`.
async fn count_in(gw: &Gateway, state: &str) -> usize {
    let (status, page) = gw.get("/v1/projects/demo/commands?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let commands = page["commands"].as_array().unwrap();
    commands.iter().filter(|c| c["state"] == state).count()
}

fn started_markers(gw: &Gateway) -> usize {
    std::fs::read_dir(gw.workspaces().join("demo"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("started.")
        })
        .count()
}

async fn run_with_priority(gw: &Gateway, script: &str, priority: i32) -> String {
    let cmd = gw
        .run("demo", json!({"kind": "shell", "script": script, "priority": priority}))
        .await;
    assert_eq!(cmd["state"], "queued", "{cmd}");
    cmd["id"].as_str().unwrap().to_owned()
}

async fn a_project_runs_at_most_its_limit_and_queues_the_rest(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 2\n").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        let script = format!("touch started.{n}; {}; echo done {n}", blocked_on("go"));
        ids.push(gw.shell("demo", &script).await);
    }
    wait_until(DEADLINE, || async { started_markers(&gw) == 2 }).await;
    for _ in 0..20 {
        assert_eq!(count_in(&gw, "running").await, 2);
        assert_eq!(count_in(&gw, "queued").await, 3);
        assert_eq!(started_markers(&gw), 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    touch(&gw, "go");
    for id in &ids {
        let cmd = gw.wait_done(id).await;
        assert_eq!(cmd["state"], "succeeded", "{cmd}");
    }
    assert_eq!(started_markers(&gw), 5);
}

async fn a_freed_slot_goes_to_the_highest_priority_command(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 2\n").await;
    let first = gw.shell("demo", &blocked_on("first.go")).await;
    let second = gw.shell("demo", &blocked_on("second.go")).await;
    gw.wait_state(&first, "running").await;
    gw.wait_state(&second, "running").await;
    let low = run_with_priority(&gw, &format!("touch low.started; {}", blocked_on("release")), -10).await;
    let high = run_with_priority(&gw, &format!("touch high.started; {}", blocked_on("release")), 10).await;

    touch(&gw, "first.go");
    gw.wait_state(&high, "running").await;
    wait_until(DEADLINE, || async { demo_file(&gw, "high.started").exists() }).await;
    let waiting = gw.command(&low).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert!(waiting["started_at"].is_null(), "{waiting}");
    assert!(!demo_file(&gw, "low.started").exists());
    assert_eq!(gw.command(&second).await["state"], "running");

    touch(&gw, "release");
    touch(&gw, "second.go");
    for id in [&first, &second, &high, &low] {
        let cmd = gw.wait_done(id).await;
        assert_eq!(cmd["state"], "succeeded", "{cmd}");
    }
}

async fn queued_commands_start_by_priority_then_in_submission_order(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 1\n").await;
    let blocker = gw.shell("demo", &blocked_on("go")).await;
    gw.wait_state(&blocker, "running").await;
    let mut ids = Vec::new();
    for (name, priority) in [("a", 0), ("b", 0), ("c", 5), ("d", 0), ("e", 5), ("f", -3), ("g", 0)] {
        ids.push(run_with_priority(&gw, &format!("echo {name} >> order.txt"), priority).await);
    }
    touch(&gw, "go");
    for id in &ids {
        let cmd = gw.wait_done(id).await;
        assert_eq!(cmd["state"], "succeeded", "{cmd}");
    }
    let order = std::fs::read_to_string(demo_file(&gw, "order.txt")).unwrap();
    assert_eq!(order, "c\ne\na\nb\nd\ng\nf\n");
}

async fn a_cancelled_queued_command_never_starts(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 1\n").await;
    let blocker = gw.shell("demo", &blocked_on("go")).await;
    gw.wait_state(&blocker, "running").await;
    let queued = gw.shell("demo", "touch ran; echo ran").await;
    assert_eq!(gw.command(&queued).await["state"], "queued");
    let url = format!("{}/v1/commands/{queued}/stream", gw.url);
    let mut live = SseStream::open(&url, &gw.admin_token, None).await;
    assert_eq!(live.status, StatusCode::OK);

    let (status, cancelled) = gw.post(&format!("/v1/commands/{queued}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    let end = live.next().await.expect("an end event");
    assert_eq!((end.event.as_str(), &end.data["state"]), ("end", &json!("cancelled")));
    assert!(live.next().await.is_none());

    let sentinel = gw.shell("demo", "echo after").await;
    touch(&gw, "go");
    assert_eq!(gw.wait_done(&blocker).await["state"], "succeeded");
    assert_eq!(gw.wait_done(&sentinel).await["state"], "succeeded");
    let after: Value = gw.command(&queued).await;
    assert_eq!(after["state"], "cancelled", "{after}");
    assert!(after["started_at"].is_null(), "{after}");
    assert!(after["exit_code"].is_null(), "{after}");
    assert!(!demo_file(&gw, "ran").exists(), "a cancelled command ran");
    let (status, _) = gw.post(&format!("/v1/commands/{queued}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

crate::on_both_databases!(
    a_project_runs_at_most_its_limit_and_queues_the_rest,
    a_freed_slot_goes_to_the_highest_priority_command,
    queued_commands_start_by_priority_then_in_submission_order,
    a_cancelled_queued_command_never_starts,
);
