//! The plugins on the request path, each measured against a baseline in the same run:
//! 1. `POST /v1/projects/demo/commands` at one connection with the default sanitizer + validator
//!    chain, and with four plugins (the two defaults and a copy of each), against the same route
//!    on a gateway with no plugins;
//! 2. accepted commands per second at 16 connections, default plugins against none;
//! 3. a plugin file swapped every 5 s while 4 connections keep posting commands: failed requests,
//!    and how long after the write the new version answers (the debounce delay included).
//!
//! Commands queue behind one that holds the project's only slot, so no process is spawned per
//! request: what is measured is acceptance (validation, plugins, the database write).
//! Run with `cargo bench --bench policy_chain`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdev::config::Config;
use rdev::plugins::manifest::{PluginManifest, World};

#[path = "support/server.rs"]
mod server;

const REQUESTS: usize = 2_000;
const ROUNDS: usize = 5;
const SWAPS: usize = 6;
const DEBOUNCE_MS: u64 = 200;

const THROUGHPUT_CONNECTIONS: usize = 16;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);

fn test_plugin(name: &str) -> PathBuf {
    Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

/// The default validator and sanitizer, each twice (the copies under other names).
fn four_plugins() -> Vec<PluginManifest> {
    let file = |name: &str| {
        Path::new(env!("RDEV_DEFAULT_PLUGINS_DIR"))
            .join(format!("{name}.wasm"))
            .display()
            .to_string()
    };
    let (validator, sanitizer) = (file("request_validator"), file("shell_sanitizer"));
    vec![
        PluginManifest::new("request-validator", World::RequestValidator, &validator, 0),
        PluginManifest::new("request-validator-copy", World::RequestValidator, &validator, 1),
        PluginManifest::new("shell-sanitizer", World::CommandSanitizer, &sanitizer, 0),
        PluginManifest::new("shell-sanitizer-copy", World::CommandSanitizer, &sanitizer, 1),
    ]
}

/// Starts a gateway on its own thread and one-worker runtime; returns its URL and admin token.
fn start(dir: &Path, plugins: Option<Vec<PluginManifest>>, plugins_dir: Option<PathBuf>) -> (String, String) {
    let mut config = Config {
        data_dir: dir.join("data"),
        plugins,
        plugins_debounce_ms: DEBOUNCE_MS,
        ..Config::default()
    };
    config.backend.workspaces = dir.join("workspaces");
    config.project_defaults.max_concurrent_commands = 1;
    // The rate limiter is measured on its own (`cargo bench --bench gateway`).
    config.limits.enabled = false;
    if let Some(plugins_dir) = plugins_dir {
        config.plugins_dir = plugins_dir;
    }
    server::serve_gateway(config, |state| {
        rdev::plugins::reload::spawn(
            state.plugins.clone(),
            Duration::from_millis(DEBOUNCE_MS),
            state.shutdown.clone(),
        );
        axum::Router::new()
    })
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

/// Occupies the project's only slot so that later commands queue.
async fn hold_slot(client: &reqwest::Client, base: &str, token: &str) {
    let (status, body) = post(client, base, token, "sleep 600").await;
    assert_eq!(status, 202, "{body}");
}

/// Microseconds per request, sorted.
async fn latencies(client: &reqwest::Client, base: &str, token: &str) -> Vec<f64> {
    let mut samples = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let (status, body) = post(client, base, token, "git status && cargo test 2>&1 | tail -n 20").await;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(status, 202, "{body}");
    }
    samples.sort_by(f64::total_cmp);
    samples
}

/// The plugins' own timings of the newest accepted command, from its audit trail.
async fn last_decisions(client: &reqwest::Client, base: &str, token: &str) -> String {
    let page: serde_json::Value = client
        .get(format!("{base}/v1/audit?action=command.accepted&limit=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decisions = page["events"][0]["detail"]["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let timings: Vec<String> = decisions
        .iter()
        .map(|d| format!("{} {} µs", d["plugin"].as_str().unwrap_or("?"), d["duration_us"]))
        .collect();
    timings.join(", ")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench_chain(client: &reqwest::Client) {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let gateways = [
        start(dirs[0].path(), Some(Vec::new()), None),
        start(dirs[1].path(), None, None),
        start(dirs[2].path(), Some(four_plugins()), None),
    ];
    for (base, token) in &gateways {
        hold_slot(client, base, token).await;
    }
    let [(off, off_token), (on, on_token), (four, four_token)] = &gateways;
    println!(
        "1. POST .../commands at one connection: default plugins, four plugins, none ({REQUESTS} requests per round, µs)"
    );
    for round in 1..=ROUNDS {
        let without = latencies(client, off, off_token).await;
        let with = latencies(client, on, on_token).await;
        let with_four = latencies(client, four, four_token).await;
        let (o50, o99) = (pct(&without, 0.5), pct(&without, 0.99));
        let (w50, w99) = (pct(&with, 0.5), pct(&with, 0.99));
        let (f50, f99) = (pct(&with_four, 0.5), pct(&with_four, 0.99));
        println!(
            "   round {round}: none p50 {o50:.0} p99 {o99:.0} | default p50 {w50:.0} p99 {w99:.0}, added p50 {:.0} p99 {:.0} | four p50 {f50:.0} p99 {f99:.0}, added p50 {:.0} p99 {:.0}",
            w50 - o50,
            w99 - o99,
            f50 - o50,
            f99 - o99
        );
        println!(
            "      plugin calls of the last request: {}",
            last_decisions(client, on, on_token).await
        );
    }
    println!("2. accepted commands per second at {THROUGHPUT_CONNECTIONS} connections, default plugins vs none");
    for round in 1..=ROUNDS {
        let without = throughput(client, off, off_token).await;
        let with = throughput(client, on, on_token).await;
        println!(
            "   round {round}: none {without:.0}/s | default {with:.0}/s | cost {:.1}%",
            100.0 * (1.0 - with / without)
        );
    }
}

/// Commands accepted per second by `THROUGHPUT_CONNECTIONS` connections posting in a loop.
async fn throughput(client: &reqwest::Client, base: &str, token: &str) -> f64 {
    let started = Instant::now();
    let posters = (0..THROUGHPUT_CONNECTIONS).map(|_| {
        let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
        tokio::spawn(async move {
            let mut accepted = 0u64;
            while started.elapsed() < THROUGHPUT_WINDOW {
                let (status, body) = post(&client, &base, &token, "git status && cargo test 2>&1 | tail -n 20").await;
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

async fn bench_swap(client: &reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    let file = plugins_dir.join("probe.wasm");
    std::fs::copy(test_plugin("probe_version_a"), &file).unwrap();
    let manifest = PluginManifest::new("probe", World::CommandSanitizer, "probe.wasm", 0);
    let (base, token) = start(dir.path(), Some(vec![manifest]), Some(plugins_dir));
    hold_slot(client, &base, &token).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = post(&client, &base, &token, "echo load").await;
                    let counter = if status == 202 { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    println!("3. swap every 5 s under load (4 connections), debounce {DEBOUNCE_MS} ms");
    // The first cycle compiles version b; every later swap loads from the artifact cache.
    for swap in 0..SWAPS + 2 {
        let version = if swap % 2 == 0 { "b" } else { "a" };
        tokio::time::sleep(Duration::from_secs(5)).await;
        let written = Instant::now();
        std::fs::copy(test_plugin(&format!("probe_version_{version}")), &file).unwrap();
        let wanted = format!("version {version}");
        loop {
            let (_, body) = post(client, &base, &token, "echo probe").await;
            if body["error"]["message"].as_str().is_some_and(|m| m.contains(&wanted)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let cached = if swap >= 2 { "cached" } else { "first load" };
        println!(
            "   swap {} to version {version} ({cached}): serving after {:.0} ms",
            swap + 1,
            written.elapsed().as_secs_f64() * 1e3
        );
    }
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(load).await;
    println!(
        "   requests during the swaps: {} succeeded, {} failed",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = rdev::http_client();
        bench_chain(&client).await;
        bench_swap(&client).await;
    });
}
