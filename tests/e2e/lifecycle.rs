//! Gateway lifecycle: a crash interrupts running commands and keeps the queue; SIGTERM drains
//! running commands within the grace period and leaves no process behind.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::sse::{SseStream, output_text};
use crate::common::{Db, Gateway, process_alive, read_pid, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn a_crash_interrupts_running_commands_and_keeps_the_queue(db: Db) {
    let mut gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 1\n").await;
    let demo = gw.workspaces().join("demo");
    let running = gw
        .shell("demo", "echo before; sleep 300 & echo $! > sleep.pid; wait; echo after")
        .await;
    let url = format!("{}/v1/commands/{running}/stream", gw.url);
    let mut live = SseStream::open(&url, &gw.admin_token, None).await;
    let first = live.next().await.expect("first output");
    assert_eq!(first.data["text"], "before\n");
    drop(live);
    let sleep_pid = read_pid(&demo.join("sleep.pid")).await;
    let mut queued = Vec::new();
    for name in ["one", "two", "three"] {
        queued.push(gw.shell("demo", &format!("echo {name} >> runs.txt")).await);
    }
    for id in &queued {
        assert_eq!(gw.command(id).await["state"], "queued");
    }

    gw.restart();
    wait_until(DEADLINE, || async { !process_alive(sleep_pid) }).await;
    let cmd = gw.wait_done(&running).await;
    assert_eq!(cmd["state"], "interrupted", "{cmd}");
    // Recovery ends commands through the same seam as the runner: they are counted.
    let metrics = crate::common::send(gw.request(reqwest::Method::GET, "/metrics"))
        .await
        .body;
    let expected = "rdev_commands_finished_total{state=\"interrupted\"} 1";
    assert!(metrics.as_str().is_some_and(|m| m.contains(expected)), "{metrics}");
    let url = format!("{}/v1/commands/{running}/stream", gw.url);
    let events = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_eq!(output_text(&events), "before\n");
    let end = events.last().unwrap();
    assert_eq!((end.event.as_str(), &end.data["state"]), ("end", &json!("interrupted")));
    for id in &queued {
        let cmd = gw.wait_done(id).await;
        assert_eq!(cmd["state"], "succeeded", "{cmd}");
    }

    gw.restart();
    let sentinel = gw.shell("demo", "true").await;
    assert_eq!(gw.wait_done(&sentinel).await["state"], "succeeded");
    let mut runs = lines_of(&demo.join("runs.txt"));
    runs.sort();
    assert_eq!(runs, ["one", "three", "two"], "each queued command runs exactly once");
    assert_eq!(gw.command(&running).await["state"], "interrupted");
}

async fn sigterm_lets_short_commands_finish_and_interrupts_long_ones(db: Db) {
    let mut gw = Gateway::start(db, "").await;
    let demo = gw.workspaces().join("demo");
    let short = gw.shell("demo", "touch short.started; sleep 1; echo done").await;
    let long = gw
        .shell("demo", "echo long; sleep 300 & echo $! > long.pid; wait; echo after")
        .await;
    let long_pid = read_pid(&demo.join("long.pid")).await;
    wait_until(DEADLINE, || async { demo.join("short.started").exists() }).await;
    assert_eq!(gw.command(&short).await["state"], "running");

    let status = gw.terminate();
    assert!(status.success(), "rdev exited with {status} after SIGTERM");
    wait_until(DEADLINE, || async { !process_alive(long_pid) }).await;

    gw.restart();
    let short_cmd = gw.command(&short).await;
    assert_eq!(short_cmd["state"], "succeeded", "{short_cmd}");
    assert_eq!(short_cmd["exit_code"], 0);
    let long_cmd = gw.command(&long).await;
    assert_eq!(long_cmd["state"], "interrupted", "{long_cmd}");
    let short_url = format!("{}/v1/commands/{short}/stream", gw.url);
    let short_events = SseStream::open(&short_url, &gw.admin_token, None).await.collect().await;
    assert_eq!(output_text(&short_events), "done\n");
    let long_url = format!("{}/v1/commands/{long}/stream", gw.url);
    let long_events = SseStream::open(&long_url, &gw.admin_token, None).await.collect().await;
    assert_eq!(output_text(&long_events), "long\n");
    assert_eq!(long_events.last().unwrap().data["state"], "interrupted");
}

async fn sigterm_ends_open_streams_with_the_final_state(db: Db) {
    let mut gw = Gateway::start(db, "").await;
    let id = gw.shell("demo", "echo waiting; sleep 300").await;
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let mut live = SseStream::open(&url, &gw.admin_token, None).await;
    assert_eq!(live.next().await.expect("output").data["text"], "waiting\n");
    let status = gw.terminate();
    assert!(status.success(), "rdev exited with {status} after SIGTERM");
    let mut rest = Vec::new();
    while let Some(event) = live.next().await {
        rest.push(event);
    }
    let last = rest.last().expect("the stream says why it ends");
    assert_eq!(
        (last.event.as_str(), &last.data["state"]),
        ("end", &json!("interrupted")),
        "{rest:?}"
    );
    gw.restart();
    assert_eq!(gw.command(&id).await["state"], "interrupted");
}

crate::on_both_databases!(
    a_crash_interrupts_running_commands_and_keeps_the_queue,
    sigterm_lets_short_commands_finish_and_interrupts_long_ones,
    sigterm_ends_open_streams_with_the_final_state,
);

/// A second `rdev serve` on the data directory of a running gateway exits at once, naming the
/// file, before it touches anything: the first gateway's running command stays running.
#[tokio::test]
async fn a_second_gateway_on_the_same_sqlite_file_refuses_to_start() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let id = gw.shell("demo", "sleep 300").await;
    gw.wait_state(&id, "running").await;
    let mut second = std::process::Command::new(crate::common::binary())
        .arg("--config")
        .arg(gw.config_file())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    wait_until(DEADLINE, || {
        exited = second.try_wait().unwrap();
        std::future::ready(exited.is_some())
    })
    .await;
    assert!(!exited.unwrap().success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    let database = gw.dir.join("data/rdev.db");
    assert!(
        stderr.contains("another gateway") && stderr.contains(&database.display().to_string()),
        "{stderr}"
    );
    assert_eq!(gw.command(&id).await["state"], "running");
    assert_eq!(gw.get("/health").await.0, reqwest::StatusCode::OK);
}
