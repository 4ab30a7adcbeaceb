//! `claude` runs under policy, with the fake Claude Code of `tests/fake-claude` (which speaks
//! stream-json and calls its `PreToolUse` hook as the documentation specifies): every tool
//! call judged by the gateway and the plugin chain, streamed as typed events and audited;
//! the hook's credential; sessions resumed within their project only; the idle watchdog.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::sse::{SseEvent, collect_whole, output_text};
use crate::common::{Db, Gateway, wait_until};

/// A `claude` program for the gateway: the fake, keeping its sessions in `home`.
fn fake_claude(home: &Path) -> PathBuf {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-claude/claude");
    let wrapper = home.join("claude");
    let script = format!(
        "#!/bin/sh\nCLAUDE_CONFIG_DIR='{}' exec '{}' \"$@\"\n",
        home.join(".claude").display(),
        fake.canonicalize().unwrap().display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// A gateway whose `claude` is the fake; `plugins` as in the configuration (defaults if empty).
async fn gateway(db: Db, home: &Path, extra: &str) -> Gateway {
    let config = format!(
        "commands.programs.claude = {:?}\ncommands.programs.git = \"git\"\n{extra}",
        fake_claude(home).display().to_string()
    );
    Gateway::start_with_plugins(db, &config).await
}

fn claude(prompt: &str) -> Value {
    json!({"kind": "claude", "prompt": prompt})
}

/// The typed events of a command's stream, in order.
async fn claude_events(gw: &Gateway, id: &str) -> Vec<Value> {
    let events: Vec<SseEvent> = collect_whole(&format!("{}/v1/commands/{id}/stream", gw.url), &gw.admin_token).await;
    events
        .into_iter()
        .filter(|e| e.event == "claude")
        .map(|e| e.data["event"].clone())
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_call_is_judged_streamed_and_audited_and_claude_hears_the_reasons() {
    let home = tempfile::tempdir().unwrap();
    let gw = gateway(Db::Sqlite, home.path(), "").await;
    let prompt = "bash: ls\nbash: rm -rf ~\nwrite: ../outside.txt: escaped\ngarbage\nstdin\ntext: done";
    let id = gw.run("demo", claude(prompt)).await["id"].as_str().unwrap().to_owned();
    let cmd = gw.wait_done(&id).await;
    assert_eq!(cmd["state"], "succeeded", "{cmd}");
    assert!(
        !gw.workspaces().join("outside.txt").exists(),
        "the write outside the workspace ran"
    );

    let events = claude_events(&gw, &id).await;
    let decisions = of_type(&events, "tool_decision");
    let verdicts: Vec<_> = decisions
        .iter()
        .map(|d| (d["tool"].as_str(), d["decision"].as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (Some("Bash"), Some("allow")),
            (Some("Bash"), Some("deny")),
            (Some("Write"), Some("deny"))
        ],
        "{events:#?}"
    );
    let rm_reason = decisions[1]["reason"].as_str().unwrap();
    assert!(rm_reason.contains("shell-sanitizer"), "{rm_reason}");
    let write_reason = decisions[2]["reason"].as_str().unwrap();
    assert!(
        write_reason.contains("outside the project's workspace"),
        "{write_reason}"
    );
    let digest = decisions[1]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["plugin"] == "shell-sanitizer")
        .and_then(|d| d["digest"].as_str())
        .unwrap_or_else(|| panic!("no decision of the sanitizer: {}", decisions[1]));
    assert_eq!(digest.len(), 64);

    // Claude received the reasons as the tools' results, and `ls` ran for real.
    let results = of_type(&events, "tool_result");
    assert_eq!(results.len(), 3, "{events:#?}");
    assert_eq!(results[0]["is_error"], false, "{}", results[0]);
    assert_eq!(results[1]["is_error"], true);
    assert!(
        results[1]["content"].as_str().unwrap().contains(rm_reason),
        "{}",
        results[1]
    );
    assert!(
        results[2]["content"].as_str().unwrap().contains("outside"),
        "{}",
        results[2]
    );
    assert_eq!(of_type(&events, "init").len(), 1);
    assert_eq!(of_type(&events, "tool_use").len(), 3);
    // Malformed lines pass through as raw output and break nothing; stdin was closed at start.
    let texts: Vec<_> = of_type(&events, "text")
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["stdin: closed", "done"]);
    let raw = collect_whole(&format!("{}/v1/commands/{id}/stream", gw.url), &gw.admin_token).await;
    assert!(output_text(&raw).contains("this is not json {"));

    // The record carries what the run reported; the audit trail every decision.
    let result = of_type(&events, "result")[0];
    assert_eq!(cmd["session_id"], result["summary"]["session_id"], "{cmd}");
    assert_eq!(cmd["run"]["num_turns"], 6, "{cmd}");
    assert!(cmd["run"]["cost_usd"].as_f64().unwrap() > 0.0, "{cmd}");
    assert_eq!(cmd["run"]["is_error"], false);
    let audited = gw.audit(&format!("action=command.tool_call&target={id}")).await;
    let mut outcomes: Vec<_> = audited.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["allow", "deny", "deny"], "{audited:#?}");
    for row in &audited {
        let decisions = row["detail"]["decisions"].as_array();
        assert!(decisions.is_some_and(|d| !d.is_empty()), "{row}");
    }
}

/// Waits for a file a fake run writes (its hook credential, through an allowed Bash call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_policy_plugin_judges_calls_by_tool_name_and_input() {
    use crate::common::plugins::{default_plugin, entry};
    let home = tempfile::tempdir().unwrap();
    let plugins = entry(
        "shell-sanitizer",
        "command-sanitizer",
        &default_plugin("shell_sanitizer"),
        "",
    ) + &entry(
        "tool-guard",
        "tool-policy",
        &default_plugin("tool_guard"),
        "config = { fetch_hosts = [\"docs.rs\"] }",
    );
    let extra = format!("project_defaults.claude_allowed_tools = [\"Bash\", \"Read\", \"WebFetch\"]\n{plugins}");
    let gw = gateway(Db::Sqlite, home.path(), &extra).await;
    std::fs::write(gw.workspaces().join("demo/.env"), "TOKEN=hunter2").unwrap();
    let prompt = "read: .env\nbash: cat config/.env.local\ntool: WebFetch {\"url\": \"https://docs.rs/tokio\"}\n\
                  tool: WebFetch {\"url\": \"https://paste.example/up\"}\nbash: ls\ntext: done";
    let id = gw.run("demo", claude(prompt)).await["id"].as_str().unwrap().to_owned();
    let cmd = gw.wait_done(&id).await;
    assert_eq!(cmd["state"], "succeeded", "{cmd}");

    let events = claude_events(&gw, &id).await;
    let decisions = of_type(&events, "tool_decision");
    let verdicts: Vec<_> = decisions
        .iter()
        .map(|d| (d["tool"].as_str().unwrap(), d["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("Read", "deny"),
            ("Bash", "deny"),
            ("WebFetch", "allow"),
            ("WebFetch", "deny"),
            ("Bash", "allow")
        ],
        "{events:#?}"
    );
    for denied in [decisions[0], decisions[1], decisions[3]] {
        let reason = denied["reason"].as_str().unwrap();
        assert!(reason.starts_with("denied by `tool-guard`"), "{reason}");
        let last = denied["decisions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["plugin"].as_str(), last["verdict"].as_str()),
            (Some("tool-guard"), Some("deny"))
        );
        assert_eq!(last["digest"].as_str().map(str::len), Some(64), "{last}");
    }
    assert!(decisions[3]["reason"].as_str().unwrap().contains("paste.example"));
    // An allowed Bash call went through the sanitizer, then the tool policy.
    let chain: Vec<_> = decisions[4]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["gateway", "shell-sanitizer", "tool-guard"]);
    // Claude was told why, and never saw the secret.
    let results = of_type(&events, "tool_result");
    assert!(
        results[0]["content"].as_str().unwrap().contains("protected file"),
        "{}",
        results[0]
    );
    assert!(
        !serde_json::to_string(&events).unwrap().contains("hunter2"),
        "the secret reached the stream"
    );
    let audited = gw.audit(&format!("action=command.tool_call&target={id}")).await;
    assert_eq!(
        audited.iter().filter(|a| a["outcome"] == "deny").count(),
        3,
        "{audited:#?}"
    );
}

async fn read_when_written(path: &Path) -> String {
    wait_until(Duration::from_secs(30), || async { path.exists() }).await;
    let mut text = String::new();
    wait_until(Duration::from_secs(5), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        let done = text.ends_with('\n');
        async move { done }
    })
    .await;
    text.trim().to_owned()
}

async fn hook_call(gw: &Gateway, id: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = rdev::http_client()
        .post(format!("{}/hooks/claude/{id}/pre-tool-use", gw.url))
        .json(&json!({"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {"file_path": "README.md"}}));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_speaks_only_for_its_own_run_and_only_while_it_runs() {
    let home = tempfile::tempdir().unwrap();
    let gw = gateway(Db::Sqlite, home.path(), "plugins = []\n").await;
    let run = |name: &str| format!("bash: printenv RDEV_HOOK_TOKEN > {name}.token\nbash: sleep 120");
    let a = gw.run("demo", claude(&run("a"))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = gw.run("demo", claude(&run("b"))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_a = read_when_written(&gw.workspaces().join("demo/a.token")).await;
    let token_b = read_when_written(&gw.workspaces().join("demo/b.token")).await;
    assert!(token_a.starts_with("rdh_") && token_a != token_b);
    // Checked when the gateway stops: no credential reaches the log.
    gw.logs.secret(token_a.clone());
    gw.logs.secret(token_b.clone());

    let (status, answer) = hook_call(&gw, &a, Some(&token_a)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "allow", "{answer}");
    for (token, why) in [
        (None, "no credential"),
        (Some(token_b.as_str()), "another run's"),
        (Some("rdh_0"), "forged"),
    ] {
        let (status, answer) = hook_call(&gw, &a, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized", "{why}: {answer}");
    }
    let (status, _) = gw.post(&format!("/v1/commands/{a}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gw.wait_done(&a).await["state"], "cancelled");
    let (status, _) = hook_call(&gw, &a, Some(&token_a)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a finished run's credential");
    assert_eq!(hook_call(&gw, &b, Some(&token_b)).await.0, StatusCode::OK);
    gw.post(&format!("/v1/commands/{b}/cancel"), json!({})).await;
    gw.wait_done(&b).await;
}

async fn sessions_resume_within_their_project_only(db: Db) {
    let home = tempfile::tempdir().unwrap();
    let gw = gateway(db, home.path(), "plugins = []\n").await;
    gw.project("other");
    gw.wait_for_project("other").await;
    let first = gw.run("demo", claude("text: one")).await;
    let session = first["command"]["session"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        gw.wait_done(first["id"].as_str().unwrap()).await["session_id"],
        session.as_str()
    );

    let resumed = gw
        .run(
            "demo",
            json!({"kind": "claude", "prompt": "text: two", "resume": session}),
        )
        .await;
    let resumed = gw.wait_done(resumed["id"].as_str().unwrap()).await;
    assert_eq!(resumed["state"], "succeeded", "{resumed}");
    assert_eq!(resumed["session_id"], session.as_str(), "{resumed}");

    let continued = gw
        .run(
            "demo",
            json!({"kind": "claude", "prompt": "text: three", "continue": true}),
        )
        .await;
    let continued = gw.wait_done(continued["id"].as_str().unwrap()).await;
    assert_eq!(
        (continued["state"].as_str(), continued["session_id"].as_str()),
        (Some("succeeded"), Some(session.as_str()))
    );

    let forked = gw
        .run(
            "demo",
            json!({"kind": "claude", "prompt": "text: four", "resume": session, "fork": true}),
        )
        .await;
    let forked = gw.wait_done(forked["id"].as_str().unwrap()).await;
    assert_eq!(forked["state"], "succeeded", "{forked}");
    let fork_session = forked["session_id"].as_str().unwrap();
    assert_ne!(fork_session, session, "a fork runs in a new session");

    let path = "/v1/projects/other/commands";
    let (status, body) = gw
        .post(path, json!({"kind": "claude", "prompt": "x", "resume": session}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another project's session: {body}");
    assert_eq!(body["error"]["code"], "session_not_found");
    let (status, body) = gw
        .post(path, json!({"kind": "claude", "prompt": "x", "continue": true}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gw
        .post(path, json!({"kind": "shell", "script": "ls", "continue": true}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = gw
        .post(path, json!({"kind": "claude", "prompt": "x", "resume": "not-a-uuid"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_within_their_project_only_on_sqlite() {
    sessions_resume_within_their_project_only(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_within_their_project_only_on_postgres() {
    sessions_resume_within_their_project_only(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stops_writing_is_cut_by_the_idle_timeout() {
    let home = tempfile::tempdir().unwrap();
    let gw = gateway(
        Db::Sqlite,
        home.path(),
        "plugins = []\n[projects.demo]\nidle_timeout_secs = 2\n",
    )
    .await;
    let id = gw.run("demo", claude("text: starting\nhang")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cmd = gw.wait_done(&id).await;
    assert_eq!(cmd["state"], "timed_out", "{cmd}");
    assert!(cmd["reason"].as_str().unwrap().contains("idle timeout"), "{cmd}");
    let events = claude_events(&gw, &id).await;
    assert_eq!(of_type(&events, "text")[0]["text"], "starting");
}
