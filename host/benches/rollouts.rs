//! Rollouts on the request path, each against a baseline in the same run:
//! 1. `POST /v1/projects/demo/commands` at one connection on three gateways: no plugins; the
//!    default validator and sanitizer; the same with a shadow candidate of the sanitizer (a copy
//!    with another digest) judging every call (`sample_rate = 1`). The plugins' cost is
//!    default − none; the shadow's share of it is (shadow − default) / (default − none);
//! 2. accepted commands per second at 16 connections, default plugins with and without the
//!    shadow;
//! 3. rollback: a version that traps on its first call is swapped in under a budget of no traps;
//!    the time from sending the request it traps on to its answer (the rollback is done before
//!    the answer), and the next request is judged by the previous version.
//!
//! Commands queue behind one that holds the project's only slot, so no process is spawned per
//! request. Run with `cargo bench --bench rollouts`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdev::config::Config;
use rdev::plugins::manifest::{PluginManifest, World};

#[path = "support/server.rs"]
mod server;

const REQUESTS: usize = 2_000;
const ROUNDS: usize = 5;
const THROUGHPUT_CONNECTIONS: usize = 16;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);
const SCRIPT: &str = "git status && cargo test 2>&1 | tail -n 20";

fn default_plugin(name: &str) -> PathBuf {
    Path::new(env!("RDEV_DEFAULT_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

fn test_plugin(name: &str) -> PathBuf {
    Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

/// A copy of `from` with a custom section appended: the same code under another digest.
fn copy_with_another_digest(from: &Path, to: &Path, tag: u8) {
    let mut wasm = std::fs::read(from).unwrap();
    // Section 0 (custom), 3 bytes: a name of 1 byte, `x`, and one byte of payload.
    wasm.extend_from_slice(&[0, 3, 1, b'x', tag]);
    std::fs::write(to, wasm).unwrap();
}

/// The default validator and sanitizer; the sanitizer with `shadow` as its candidate.
fn defaults(shadow: Option<&Path>) -> Vec<PluginManifest> {
    let file = |name: &str| default_plugin(name).display().to_string();
    let mut sanitizer = PluginManifest::new("shell-sanitizer", World::CommandSanitizer, &file("shell_sanitizer"), 0);
    sanitizer.shadow_file = shadow.map(Path::to_owned);
    vec![
        PluginManifest::new(
            "request-validator",
            World::RequestValidator,
            &file("request_validator"),
            0,
        ),
        sanitizer,
    ]
}

fn start(dir: &Path, plugins: Vec<PluginManifest>, plugins_dir: Option<PathBuf>) -> (String, String) {
    let mut config = Config {
        data_dir: dir.join("data"),
        plugins: Some(plugins),
        ..Config::default()
    };
    config.backend.workspaces = dir.join("workspaces");
    config.project_defaults.max_concurrent_commands = 1;
    config.limits.enabled = false;
    if let Some(plugins_dir) = plugins_dir {
        config.plugins_dir = plugins_dir;
    }
    server::serve_gateway(config, |_| axum::Router::new())
}

async fn post(client: &reqwest::Client, base: &str, token: &str, script: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "kind": "shell", "script": script });
    let resp = client
        .post(format!("{base}/v1/projects/demo/commands"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

async fn get(client: &reqwest::Client, base: &str, token: &str, path: &str) -> serde_json::Value {
    let resp = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap_or_default()
}

/// Microseconds per request, sorted.
async fn latencies(client: &reqwest::Client, base: &str, token: &str) -> Vec<f64> {
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let (status, body) = post(client, base, token, SCRIPT).await;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(status, 202, "{body}");
    }
    samples.sort_by(f64::total_cmp);
    samples
}

/// The sanitizer calls' own durations (µs, sorted) in the newest accepted commands' audit rows:
/// what the request path spends in the plugin, the shadow's hand-off included.
async fn sanitizer_durations(client: &reqwest::Client, base: &str, token: &str) -> Vec<f64> {
    let page = get(client, base, token, "/v1/audit?action=command.accepted&limit=500").await;
    let mut durations: Vec<f64> = page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["detail"]["decisions"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["plugin"] == "shell-sanitizer")
        .filter_map(|d| d["duration_us"].as_f64())
        .collect();
    durations.sort_by(f64::total_cmp);
    durations
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Commands accepted per second by `THROUGHPUT_CONNECTIONS` connections posting in a loop.
async fn throughput(client: &reqwest::Client, base: &str, token: &str) -> f64 {
    let started = Instant::now();
    let posters = (0..THROUGHPUT_CONNECTIONS).map(|_| {
        let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
        tokio::spawn(async move {
            let mut accepted = 0u64;
            while started.elapsed() < THROUGHPUT_WINDOW {
                let (status, body) = post(&client, &base, &token, SCRIPT).await;
                assert_eq!(status, 202, "{body}");
                accepted += 1;
            }
            accepted
        })
    });
    let accepted: u64 = futures::future::join_all(posters)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    accepted as f64 / started.elapsed().as_secs_f64()
}

async fn bench_shadow(client: &reqwest::Client) {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let candidate = dirs[2].path().join("candidate.wasm");
    copy_with_another_digest(&default_plugin("shell_sanitizer"), &candidate, 1);
    let gateways = [
        start(dirs[0].path(), Vec::new(), None),
        start(dirs[1].path(), defaults(None), None),
        start(dirs[2].path(), defaults(Some(&candidate)), None),
    ];
    for (base, token) in &gateways {
        let (status, body) = post(client, base, token, "sleep 600").await;
        assert_eq!(status, 202, "{body}");
    }
    let [(none, none_token), (plain, plain_token), (shadowed, shadow_token)] = &gateways;
    let diff = |label: &'static str| async move {
        let report = get(client, shadowed, shadow_token, "/v1/plugins/shell-sanitizer/shadow").await;
        let d = &report["diff"];
        println!(
            "      shadow after {label}: {} calls compared, {} dropped, {} disagreements",
            d["calls"], d["dropped"], d["disagreements"]
        );
    };
    println!(
        "1. POST .../commands at one connection: no plugins, default plugins, default + shadow ({REQUESTS} requests per round, µs)"
    );
    for round in 1..=ROUNDS {
        let without = latencies(client, none, none_token).await;
        let with = latencies(client, plain, plain_token).await;
        let shadow = latencies(client, shadowed, shadow_token).await;
        let (n50, p50, s50) = (pct(&without, 0.5), pct(&with, 0.5), pct(&shadow, 0.5));
        let (n99, p99, s99) = (pct(&without, 0.99), pct(&with, 0.99), pct(&shadow, 0.99));
        println!(
            "   round {round}: none p50 {n50:.0} p99 {n99:.0} | plugins p50 {p50:.0} p99 {p99:.0} (cost p50 {:.0}) | + shadow p50 {s50:.0} p99 {s99:.0}: adds {:.0} µs = {:.1} % of the plugins' cost",
            p50 - n50,
            s50 - p50,
            100.0 * (s50 - p50) / (p50 - n50)
        );
        let plain_calls = sanitizer_durations(client, plain, plain_token).await;
        let shadow_calls = sanitizer_durations(client, shadowed, shadow_token).await;
        let (c50, cs50) = (pct(&plain_calls, 0.5), pct(&shadow_calls, 0.5));
        let (c99, cs99) = (pct(&plain_calls, 0.99), pct(&shadow_calls, 0.99));
        println!(
            "      the sanitizer call itself (last {} requests): p50 {c50:.0} µs, with the shadow {cs50:.0} µs ({:+.1} %); p99 {c99:.0} / {cs99:.0} µs",
            plain_calls.len(),
            100.0 * (cs50 - c50) / c50
        );
    }
    diff("the latency rounds").await;
    println!(
        "2. accepted commands per second at {THROUGHPUT_CONNECTIONS} connections, default plugins vs default + shadow"
    );
    for round in 1..=ROUNDS {
        let with = throughput(client, plain, plain_token).await;
        let shadow = throughput(client, shadowed, shadow_token).await;
        println!(
            "   round {round}: plugins {with:.0}/s | + shadow {shadow:.0}/s = {:.1} %",
            100.0 * shadow / with
        );
    }
    diff("the throughput rounds").await;
}

async fn bench_rollback(client: &reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    let file = plugins_dir.join("probe.wasm");
    std::fs::copy(test_plugin("probe_version_a"), &file).unwrap();
    let mut manifest = PluginManifest::new("probe", World::CommandSanitizer, "probe.wasm", 0);
    manifest.rollout.rollback.max_traps = 0;
    let (base, token) = start(dir.path(), vec![manifest], Some(plugins_dir));
    let (status, body) = post(client, &base, &token, "sleep 600").await;
    assert_eq!(status, 202, "{body}");
    println!("3. rollback of a version that traps, budget: no trap (window 60 s)");
    for round in 1..=ROUNDS {
        // Each round's bad version has a digest of its own: a rolled-back digest is refused.
        copy_with_another_digest(&test_plugin("flaky_trap"), &file, round as u8);
        let reload = client
            .post(format!("{base}/v1/plugins/reload"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let report: serde_json::Value = reload.json().await.unwrap();
        assert_eq!(report["loaded"][0], "probe", "{report}");
        let sent = Instant::now();
        let (status, body) = post(client, &base, &token, "echo 10").await;
        let answered = sent.elapsed();
        assert_eq!(status, 422, "the trap is refused fail-closed: {body}");
        let (_, next) = post(client, &base, &token, "echo probe").await;
        let message = next["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("version a"), "the previous version serves: {next}");
        let rolled = get(client, &base, &token, "/v1/plugins").await;
        assert!(rolled["plugins"][0]["rolled_back_from"].is_object(), "{rolled}");
        println!(
            "   round {round}: the trapping request answered, with the rollback done, after {:.2} ms",
            answered.as_secs_f64() * 1e3
        );
        // The next round swaps from version a again.
        std::fs::copy(test_plugin("probe_version_a"), &file).unwrap();
        client
            .post(format!("{base}/v1/plugins/reload"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = rdev::http_client();
        bench_shadow(&client).await;
        bench_rollback(&client).await;
    });
}
