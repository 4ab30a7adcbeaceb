//! The real Claude Code CLI (npm `@anthropic-ai/claude-code`, which `scripts/test.sh` installs and
//! names in `RDEV_TEST_CLAUDE_CLI`) takes every flag the gateway passes to a `claude` run: started
//! by the gateway without credentials, it gets as far as its `system/init` event (in the project's
//! workspace, in the project's permission mode) and its `result`, instead of refusing an option
//! (also `--max-budget-usd`, `--session-id`, `--settings` with the hook, `--resume`, `--fork-session`) —
//! so a renamed or removed option fails here, not in production.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::common::sse::{SseStream, output_text};
use crate::common::{Db, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_claude_cli_takes_every_flag_the_gateway_passes() {
    let cli = std::env::var("RDEV_TEST_CLAUDE_CLI")
        .expect("RDEV_TEST_CLAUDE_CLI names the Claude Code CLI (scripts/test.sh installs it)");
    // Its own home, so that the CLI's state stays out of the machine's.
    let home = tempfile::tempdir().unwrap();
    let wrapper = home.path().join("claude");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nHOME='{}' exec '{cli}' \"$@\"\n", home.path().display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = format!(
        "[commands.programs]\nclaude = {wrapper:?}\ngit = \"git\"\n\
         [projects.demo]\nclaude_max_turns = 3\nclaude_permission_mode = \"plan\"\nclaude_max_budget_usd = 1.5\n"
    );
    let gw = Gateway::start(Db::Sqlite, &config).await;
    // A prompt that is also an option's name stays a prompt.
    let cmd = gw
        .run(
            "demo",
            json!({"kind": "claude", "prompt": "--dangerously-skip-permissions"}),
        )
        .await;
    let id = cmd["id"].as_str().unwrap();
    let output = output_taking_every_option(&gw, id).await;
    let events: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let init = events
        .iter()
        .find(|e| e["type"] == "system" && e["subtype"] == "init")
        .unwrap_or_else(|| panic!("no system/init event in {output}"));
    assert_eq!(init["permissionMode"], "plan", "{init}");
    let workspace = gw.workspaces().join("demo").canonicalize().unwrap();
    assert_eq!(init["cwd"].as_str(), workspace.to_str(), "{init}");
    assert!(
        events.iter().any(|e| e["type"] == "result"),
        "no result event in {output}"
    );
    // Going on from that session passes `--resume` and `--fork-session`; the CLI takes them
    // (what it says about a session it never saved without credentials does not matter here).
    let session = gw.command(id).await["session_id"].as_str().unwrap().to_owned();
    let fork = gw
        .run(
            "demo",
            json!({"kind": "claude", "prompt": "again", "resume": session, "fork": true}),
        )
        .await;
    output_taking_every_option(&gw, fork["id"].as_str().unwrap()).await;
}

/// The output of a command once it ended, checked to refuse no option.
async fn output_taking_every_option(gw: &Gateway, id: &str) -> String {
    gw.wait_done(id).await;
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let output = output_text(&SseStream::open(&url, &gw.admin_token, None).await.collect().await);
    assert!(!output.contains("option"), "the CLI refused an option: {output}");
    output
}
