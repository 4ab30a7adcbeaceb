//! What a `claude` run's tool call waits for: the `PreToolUse` hook's round trip to a real
//! `rdev serve` (SQLite, the default plugins), from Claude Code's side — HTTP, the run's
//! credential, the allowlist and path rules, the sanitizer chain for a `Bash` call, and the
//! audit row written before the answer. Measured beside an authenticated `GET` of the same
//! command over the same connection in the same run (the HTTP round trip alone).
//!
//! `cargo bench --bench claude_hook`; `RDEV_BENCH_HOOK_CALLS` sets the calls per kind
//! (default 2,000).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/process.rs"]
mod process;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    println!(
        "{name:<34} p50 {p50:>7.3} ms   p99 {p99:>7.3} ms   ({} calls)",
        ms.len()
    );
    (p50, p99)
}

/// A `claude` program that hands its hook credential to the benchmark and waits.
fn write_program(dir: &Path) -> std::path::PathBuf {
    let program = dir.join("claude");
    std::fs::write(
        &program,
        "#!/bin/sh\nprintf '%s\\n' \"$RDEV_HOOK_TOKEN\" > hook.token.part && mv hook.token.part hook.token\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    program
}

async fn timed(request: reqwest::RequestBuilder) -> (f64, Value) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.unwrap();
    (started.elapsed().as_secs_f64() * 1e3, body)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls: usize = std::env::var("RDEV_BENCH_HOOK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspaces/demo");
    std::fs::create_dir_all(&workspace).unwrap();
    let program = write_program(dir.path());
    let config = dir.path().join("rdev.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nbackend.workspaces = {:?}\nlimits.enabled = false\n\
             [commands.programs]\nclaude = {:?}\ngit = \"git\"\n",
            dir.path().join("data"),
            dir.path().join("workspaces"),
            program,
        ),
    )
    .unwrap();
    let mut gateway = process::launch(&config, true);
    let token = gateway.token.clone().expect("a bootstrap token");
    let client = rdev::http_client();
    let submit = client
        .post(format!("{}/v1/projects/demo/commands", gateway.url))
        .bearer_auth(&token)
        .json(&json!({"kind": "claude", "prompt": "benchmark"}));
    let (_, cmd) = timed(submit).await;
    let id = cmd["id"].as_str().unwrap().to_owned();
    let token_file = workspace.join("hook.token");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !token_file.exists() {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let credential = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    let hook = format!("{}/hooks/claude/{id}/pre-tool-use", gateway.url);
    let call = |tool: &str, input: Value| {
        client.post(&hook).bearer_auth(&credential).json(&json!({
            "session_id": "bench", "hook_event_name": "PreToolUse", "tool_name": tool,
            "tool_input": input, "tool_use_id": "toolu_bench", "cwd": "/", "permission_mode": "dontAsk",
        }))
    };
    let get = || {
        client
            .get(format!("{}/v1/commands/{id}", gateway.url))
            .bearer_auth(&token)
    };
    // Warm up the connection, the plugin pool and the caches.
    for _ in 0..50 {
        timed(call("Bash", json!({"command": "git status"}))).await;
        timed(get()).await;
    }
    let (mut bash, mut write, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..calls {
        let (ms, answer) = timed(call("Bash", json!({"command": "git status && cargo test -q"}))).await;
        assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "allow", "{answer}");
        bash.push(ms);
        let (ms, answer) = timed(call("Write", json!({"file_path": "src/lib.rs", "content": "x"}))).await;
        assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "allow", "{answer}");
        write.push(ms);
        baseline.push(timed(get()).await.0);
    }
    println!("PreToolUse hook decisions, one connection, SQLite, default plugins:");
    let (bash_p50, bash_p99) = summary("Bash (sanitizer chain + audit)", bash);
    summary("Write (path rules + audit)", write);
    let (base_p50, _) = summary("baseline: GET /v1/commands/{id}", baseline);
    println!(
        "targets: p50 <= 2 ms: {} ({bash_p50:.3} ms, {:.1}x the baseline's round trip); p99 <= 10 ms: {} ({bash_p99:.3} ms)",
        if bash_p50 <= 2.0 { "met" } else { "MISSED" },
        bash_p50 / base_p50,
        if bash_p99 <= 10.0 { "met" } else { "MISSED" },
    );
    let _ = gateway.child.kill();
    let _ = gateway.child.wait();
}
