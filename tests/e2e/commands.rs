//! Running commands: kinds, exit codes, validation, environment, idempotency, timeouts and cancel.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::sse::{SseStream, output_text};
use crate::common::{Db, Gateway, process_alive, read_pid, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// The whole output of a command that has ended.
async fn output_of(gw: &Gateway, id: &str) -> String {
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    output_text(&SseStream::open(&url, &gw.admin_token, None).await.collect().await)
}

/// Runs a command to its end and returns it.
async fn run_to_end(gw: &Gateway, body: Value) -> Value {
    let cmd = gw.run("demo", body).await;
    gw.wait_done(cmd["id"].as_str().unwrap()).await
}

fn outcome(cmd: &Value) -> (&str, Option<i64>) {
    (cmd["state"].as_str().unwrap(), cmd["exit_code"].as_i64())
}

/// Posts a command and returns the status and the field named by the first field error.
async fn rejected_field(gw: &Gateway, body: Value) -> (StatusCode, String) {
    let (status, reply) = gw.post("/v1/projects/demo/commands", body).await;
    let field = reply["error"]["fields"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, field)
}

async fn command_count(gw: &Gateway) -> usize {
    let (status, page) = gw.get("/v1/projects/demo/commands").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["commands"].as_array().unwrap().len()
}

async fn git_and_shell_commands_end_with_their_exit_codes(db: Db) {
    let gw = Gateway::start(db, "").await;
    let git_ok = run_to_end(&gw, json!({"kind": "git", "args": ["status", "--short"]})).await;
    assert_eq!(outcome(&git_ok), ("succeeded", Some(0)), "{git_ok}");
    let git_bad = run_to_end(&gw, json!({"kind": "git", "args": ["no-such-subcommand"]})).await;
    assert_eq!(outcome(&git_bad), ("failed", Some(1)), "{git_bad}");
    let shell_ok = run_to_end(&gw, json!({"kind": "shell", "script": "echo hi"})).await;
    assert_eq!(outcome(&shell_ok), ("succeeded", Some(0)), "{shell_ok}");
    assert_eq!(output_of(&gw, shell_ok["id"].as_str().unwrap()).await, "hi\n");
    let shell_bad = run_to_end(&gw, json!({"kind": "shell", "script": "echo no >&2; exit 7"})).await;
    assert_eq!(outcome(&shell_bad), ("failed", Some(7)), "{shell_bad}");
    assert!(shell_bad["finished_at"].is_string(), "{shell_bad}");
}

async fn argv_commands_never_pass_through_a_shell(db: Db) {
    let gw = Gateway::start(db, "").await;
    let demo = gw.workspaces().join("demo");
    for args in [
        json!(["log", "; touch pwned"]),
        json!(["log", "$(touch pwned)"]),
        json!(["log", "`touch pwned`", "&&", "touch", "pwned"]),
        json!(["log | touch pwned"]),
    ] {
        let cmd = run_to_end(&gw, json!({"kind": "git", "args": args})).await;
        assert_eq!(cmd["state"], "failed", "git took {args} as shell syntax: {cmd}");
    }
    let echoed = run_to_end(
        &gw,
        json!({"kind": "git", "args": ["log", "--format=%s", "--grep=; touch pwned"]}),
    )
    .await;
    assert_eq!(outcome(&echoed), ("succeeded", Some(0)), "{echoed}");
    assert!(!demo.join("pwned").exists(), "an argument ran as a shell command");
}

async fn claude_commands_run_the_configured_program_with_the_prompt(db: Db) {
    let config = "[commands.programs]\nclaude = \"echo\"\ngit = \"git\"\n\
                  [projects.demo]\nclaude_max_turns = 7\nclaude_permission_mode = \"plan\"\nclaude_max_budget_usd = 2.5\n";
    let gw = Gateway::start(db, config).await;
    let cmd = run_to_end(&gw, json!({"kind": "claude", "prompt": "summarise; the repo $HOME"})).await;
    assert_eq!(outcome(&cmd), ("succeeded", Some(0)), "{cmd}");
    let (id, session) = (cmd["id"].as_str().unwrap(), cmd["session_id"].as_str().unwrap());
    let argv = output_of(&gw, id).await;
    let expected_start = format!(
        "-p --output-format stream-json --verbose --max-turns 7 --permission-mode plan --max-budget-usd 2.5 \
         --session-id {session} --settings {{"
    );
    assert!(argv.starts_with(&expected_start), "{argv}");
    assert!(argv.ends_with("} -- summarise; the repo $HOME\n"), "{argv}");
    assert!(
        argv.contains(&format!("{}/hooks/claude/{id}/pre-tool-use", gw.url)),
        "{argv}"
    );
}

async fn kinds_outside_the_projects_allowed_kinds_are_rejected(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nallowed_kinds = [\"git\"]\n").await;
    let (status, field) = rejected_field(&gw, json!({"kind": "shell", "script": "touch made"})).await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "kind"));
    let (status, field) = rejected_field(&gw, json!({"kind": "claude", "prompt": "hi"})).await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "kind"));
    assert_eq!(command_count(&gw).await, 0);
    let git = run_to_end(&gw, json!({"kind": "git", "args": ["status"]})).await;
    assert_eq!(git["state"], "succeeded", "{git}");
    assert!(!gw.workspaces().join("demo/made").exists());
}

async fn only_allowlisted_variables_reach_a_minimal_environment(db: Db) {
    let mut gw = Gateway::start(db, "").await;
    gw.restart_with_env(&[("RDEV_TEST_SECRET", "s3cr3t-value")]);
    let (status, field) = rejected_field(
        &gw,
        json!({"kind": "shell", "script": "env", "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
    )
    .await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "env"));
    assert_eq!(command_count(&gw).await, 0);

    let cmd = run_to_end(&gw, json!({"kind": "shell", "script": "env", "env": {"CI": "yes-ci"}})).await;
    assert_eq!(cmd["state"], "succeeded", "{cmd}");
    let env = output_of(&gw, cmd["id"].as_str().unwrap()).await;
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect();
    assert!(env.lines().any(|l| l == "CI=yes-ci"), "{env}");
    assert!(names.contains(&"PATH"), "{env}");
    assert!(!env.contains("s3cr3t-value"), "the gateway's secret leaked: {env}");
    for name in &names {
        assert!(
            ["CI", "PATH", "HOME", "LANG", "TZ", "PWD", "OLDPWD", "SHLVL", "_"].contains(name),
            "unexpected variable {name} in {env}"
        );
    }
}

async fn out_of_range_priority_and_zero_timeout_are_rejected(db: Db) {
    let gw = Gateway::start(db, "").await;
    for (body, expected) in [
        (
            json!({"kind": "shell", "script": "touch made", "priority": 101}),
            "priority",
        ),
        (
            json!({"kind": "shell", "script": "touch made", "priority": -101}),
            "priority",
        ),
        (
            json!({"kind": "shell", "script": "touch made", "timeout_secs": 0}),
            "timeout_secs",
        ),
    ] {
        let (status, field) = rejected_field(&gw, body.clone()).await;
        assert_eq!(
            (status, field.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}"
        );
    }
    assert_eq!(command_count(&gw).await, 0);
    assert!(!gw.workspaces().join("demo/made").exists());
    for priority in [-100, 100] {
        let cmd = run_to_end(&gw, json!({"kind": "shell", "script": "true", "priority": priority})).await;
        assert_eq!(cmd["priority"], priority);
        assert_eq!(cmd["state"], "succeeded", "{cmd}");
    }
}

async fn an_idempotency_key_returns_the_first_command_for_the_same_request(db: Db) {
    let gw = Gateway::start(db, "").await;
    let post = |key: &'static str, script: &'static str| {
        gw.client
            .request(Method::POST, format!("{}/v1/projects/demo/commands", gw.url))
            .bearer_auth(&gw.admin_token)
            .header("Idempotency-Key", key)
            .json(&json!({"kind": "shell", "script": script}))
            .send()
    };
    let first = post("deploy-42", "echo once >> runs.txt").await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let again = post("deploy-42", "echo once >> runs.txt").await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let conflict = post("deploy-42", "echo twice >> runs.txt").await.unwrap();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let conflict: Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["code"], "idempotency_conflict", "{conflict}");
    let done = gw.wait_done(first["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(command_count(&gw).await, 1);
    let runs = std::fs::read_to_string(gw.workspaces().join("demo/runs.txt")).unwrap();
    assert_eq!(runs, "once\n");
}

async fn a_retry_gets_the_original_command_even_after_the_rules_changed(db: Db) {
    let mut gw = Gateway::start(db, "").await;
    let post = |gw: &Gateway| {
        gw.client
            .request(Method::POST, format!("{}/v1/projects/demo/commands", gw.url))
            .bearer_auth(&gw.admin_token)
            .header("Idempotency-Key", "retry-1")
            .json(&json!({"kind": "shell", "script": "echo hi"}))
            .send()
    };
    let first: Value = post(&gw).await.unwrap().json().await.unwrap();
    gw.wait_done(first["id"].as_str().unwrap()).await;
    let config = std::fs::read_to_string(gw.config_file()).unwrap();
    std::fs::write(
        gw.config_file(),
        config + "[projects.demo]\nallowed_kinds = [\"git\"]\n",
    )
    .unwrap();
    gw.restart();
    let fresh = gw
        .run_status("demo", json!({"kind": "shell", "script": "echo new"}))
        .await;
    assert_eq!(fresh, StatusCode::UNPROCESSABLE_ENTITY, "shell is no longer allowed");
    let retry = post(&gw).await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(retry["state"], "succeeded");
}

async fn a_command_past_its_timeout_ends_timed_out(db: Db) {
    let gw = Gateway::start(db, "").await;
    let script = "sleep 300 & echo $! > sleep.pid; wait";
    let cmd = run_to_end(&gw, json!({"kind": "shell", "script": script, "timeout_secs": 1})).await;
    assert_eq!(cmd["state"], "timed_out", "{cmd}");
    assert_eq!(cmd["timeout_secs"], 1);
    let pid = read_pid(&gw.workspaces().join("demo/sleep.pid")).await;
    wait_until(DEADLINE, || async { !process_alive(pid) }).await;
}

async fn a_silent_command_is_cut_by_the_idle_timeout(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nidle_timeout_secs = 2\n").await;
    let script = "echo started; sleep 300 & echo $! > sleep.pid; wait";
    let cmd = run_to_end(&gw, json!({"kind": "shell", "script": script, "timeout_secs": 600})).await;
    assert_eq!(cmd["state"], "timed_out", "{cmd}");
    let reason = cmd["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no output for 2s"), "{cmd}");
    let pid = read_pid(&gw.workspaces().join("demo/sleep.pid")).await;
    wait_until(DEADLINE, || async { !process_alive(pid) }).await;
}

async fn a_command_that_keeps_writing_outlives_the_idle_timeout(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nidle_timeout_secs = 3\n").await;
    // Six seconds in all, never more than a fifth of one without output.
    let script = "for i in $(seq 30); do echo tick $i; sleep 0.2; done";
    let cmd = run_to_end(&gw, json!({"kind": "shell", "script": script})).await;
    assert_eq!(cmd["state"], "succeeded", "{cmd}");
}

async fn cancelling_a_running_command_kills_its_process_group(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw
        .shell(
            "demo",
            "echo started; sleep 300 & echo $! > child.pid; wait; echo not-cancelled",
        )
        .await;
    let pid = read_pid(&gw.workspaces().join("demo/child.pid")).await;
    assert!(process_alive(pid));
    assert_eq!(gw.command(&id).await["state"], "running");
    let (status, cancelled) = gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    wait_until(DEADLINE, || async { !process_alive(pid) }).await;
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let events = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_eq!(output_text(&events), "started\n");
    assert_eq!(events.last().unwrap().event, "end");
    assert_eq!(events.last().unwrap().data["state"], "cancelled");

    let (status, again) = gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "already_ended", "{again}");
    let finished = run_to_end(&gw, json!({"kind": "shell", "script": "true"})).await;
    let (status, _) = gw
        .post(
            &format!("/v1/commands/{}/cancel", finished["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(gw.command(finished["id"].as_str().unwrap()).await["state"], "succeeded");
}

crate::on_both_databases!(
    git_and_shell_commands_end_with_their_exit_codes,
    argv_commands_never_pass_through_a_shell,
    claude_commands_run_the_configured_program_with_the_prompt,
    kinds_outside_the_projects_allowed_kinds_are_rejected,
    only_allowlisted_variables_reach_a_minimal_environment,
    out_of_range_priority_and_zero_timeout_are_rejected,
    an_idempotency_key_returns_the_first_command_for_the_same_request,
    a_retry_gets_the_original_command_even_after_the_rules_changed,
    a_command_past_its_timeout_ends_timed_out,
    a_silent_command_is_cut_by_the_idle_timeout,
    a_command_that_keeps_writing_outlives_the_idle_timeout,
    cancelling_a_running_command_kills_its_process_group,
);
