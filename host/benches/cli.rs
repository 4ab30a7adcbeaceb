//! `rdev run` against curl, in the same run: the time from starting the client to the first
//! byte of a command's output on its stdout. The curl side is what a script does with the API:
//! one `curl` POSTs the command, a second follows its stream. Both start a process per run.
//! Run with `cargo bench --bench cli`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdev::config::Config;

#[path = "support/server.rs"]
mod server;

const RUNS: usize = 40;
const ROUNDS: usize = 5;
const SCRIPT: &str = "echo first-byte";

/// Time to the first line of a child's stdout.
fn first_line(mut child: std::process::Child, started: Instant) -> Duration {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let took = started.elapsed();
    assert!(line.contains("first-byte"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn with_curl(base: &str, token: &str) -> Duration {
    let started = Instant::now();
    let body = serde_json::json!({"kind": "shell", "script": SCRIPT}).to_string();
    let posted = Command::new("curl")
        .args([
            "-s",
            "-H",
            &format!("authorization: Bearer {token}"),
            "-H",
            "content-type: application/json",
        ])
        .args(["-d", &body, &format!("{base}/v1/projects/demo/commands")])
        .output()
        .unwrap();
    let command: serde_json::Value = serde_json::from_slice(&posted.stdout).unwrap();
    let id = command["id"].as_str().unwrap();
    let mut stream = Command::new("curl")
        .args(["-sN", "-H", &format!("authorization: Bearer {token}")])
        .arg(format!("{base}/v1/commands/{id}/stream"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line of the stream is the output event's `event:` line; its `data:` follows.
    let mut lines = BufReader::new(stream.stdout.take().unwrap()).lines();
    let took = loop {
        let line = lines.next().unwrap().unwrap();
        if line.starts_with("data:") {
            break started.elapsed();
        }
    };
    let _ = stream.kill();
    let _ = stream.wait();
    took
}

fn with_rdev(base: &str, token: &str) -> Duration {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_rdev"))
        .args(["run", "demo", "--shell", SCRIPT])
        .env("RDEV_URL", base)
        .env("RDEV_TOKEN", token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    first_line(child, started)
}

fn median_ms(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(samples[samples.len() / 2]), ms(samples[samples.len() * 9 / 10]))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        plugins: Some(Vec::new()),
        ..Config::default()
    };
    config.backend.workspaces = dir.path().join("workspaces");
    config.limits.enabled = false;
    config.project_defaults.max_concurrent_commands = 64;
    let (base, token) = server::serve_gateway(config, |_| axum::Router::new());
    println!("time to the first byte of `{SCRIPT}`, {RUNS} runs per client and round (ms, median / p90)");
    for round in 1..=ROUNDS {
        let (mut curl, mut rdev) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            curl.push(with_curl(&base, &token));
            rdev.push(with_rdev(&base, &token));
        }
        let ((c50, c90), (r50, r90)) = (median_ms(curl), median_ms(rdev));
        println!(
            "   round {round}: curl {c50:.1} / {c90:.1} | rdev run {r50:.1} / {r90:.1} | rdev adds {:.1} ms at the median",
            r50 - c50
        );
    }
}
