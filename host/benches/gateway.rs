//! Gateway benchmarks, each reported as a ratio or percentile measured in the same run:
//! 1. authenticated `GET /v1/projects` throughput against a bare axum route on the same server,
//!    and with rate limits on (a tier no request exceeds) against the same gateway without them;
//! 2. a command printing 100,000 lines followed live over SSE (write-to-client latency);
//! 3. replaying 1,000 events after `Last-Event-ID`.
//!
//! 4. the trace spans of a request with no exporter configured, against the request itself.
//!
//! Run with `cargo bench --bench gateway`. When invoked as `gateway emit N` the binary is the
//! line emitter used by benchmark 2; as `gateway serve` it only serves, for an external load tool
//! (`scripts/bench-wrk.sh`), and as `gateway serve --traced` it also exports every span over
//! OTLP/HTTP to a receiver of its own (sampling everything).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use rdev::config::{Config, LimitsConfig};

#[path = "support/limits.rs"]
mod bench_limits;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/lines.rs"]
mod lines;
#[path = "support/server.rs"]
mod server;

use bench_limits::unrefused_limits;
use lines::{emit, now_ns, percentile};

const LOAD_CONNECTIONS: usize = 16;
const LOAD_ROUND: Duration = Duration::from_secs(1);
const LOAD_ROUNDS: usize = 9;
const LINES: usize = 100_000;
const REPLAY_EVENTS: i64 = 1_000;
const REPLAY_RUNS: usize = 50;

/// Starts the gateway (plus a bare route) on its own thread with a one-worker runtime, so that
/// server and load generator each have one of the machine's two cores, as with an external load
/// tool. Returns the base URL and an admin token.
fn start_server(workspaces: PathBuf, data_dir: PathBuf, limits: LimitsConfig) -> (String, String) {
    let config = Config {
        data_dir,
        // The plugin chain is measured on its own (`cargo bench --bench policy_chain`).
        plugins: Some(Vec::new()),
        backend: rdev::config::BackendConfig {
            workspaces,
            ..Default::default()
        },
        limits,
        ..Config::default()
    };
    server::serve_gateway(config, |_| {
        // The baseline: the same JSON body as `GET /v1/projects`, with no middleware at all.
        let settings = Config::default().project_defaults;
        Router::new().route(
            "/bare",
            get(move || {
                let project = serde_json::json!({
                    "name": "demo", "description": null, "backend": "local", "settings": settings.clone()
                });
                async move { axum::Json(serde_json::json!({ "projects": [project] })) }
            }),
        )
    })
}

/// Requests per second over `LOAD_CONNECTIONS` keep-alive connections for one round.
async fn throughput(client: &reqwest::Client, url: &str, token: &str) -> f64 {
    let deadline = Instant::now() + LOAD_ROUND;
    let workers = (0..LOAD_CONNECTIONS).map(|_| {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert!(resp.status().is_success(), "{}", resp.status());
                resp.bytes().await.unwrap();
                done += 1;
            }
            done
        })
    });
    let total: u64 = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    total as f64 / LOAD_ROUND.as_secs_f64()
}

/// The gateways of benchmark 1: base URL and token of one with rate limits, and of one without.
struct Servers {
    limited: (String, String),
    unlimited: (String, String),
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Benchmark 1; returns the authenticated throughput.
async fn bench_projects(servers: &Servers) -> f64 {
    let client = rdev::http_client();
    let ((base, token), (free_base, free_token)) = (&servers.limited, &servers.unlimited);
    let (mut bare, mut auth, mut free) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..LOAD_ROUNDS {
        bare.push(throughput(&client, &format!("{base}/bare"), token).await);
        auth.push(throughput(&client, &format!("{base}/v1/projects"), token).await);
        free.push(throughput(&client, &format!("{free_base}/v1/projects"), free_token).await);
    }
    let (b, a, f) = (median(bare), median(auth), median(free));
    println!("GET /v1/projects (authenticated): {a:.0} req/s (median of {LOAD_ROUNDS} rounds)");
    println!("GET /bare (bare axum route):      {b:.0} req/s");
    println!("GET /v1/projects, limits off:     {f:.0} req/s");
    println!(
        "ratio authenticated / bare:       {:.1}%  (target >= 85%)",
        100.0 * a / b
    );
    println!(
        "rate limiter cost:                {:.1}%  (target <= 3%)",
        100.0 * (1.0 - a / f)
    );
    a
}

async fn start_command(client: &reqwest::Client, base: &str, token: &str, script: String) -> String {
    let body = serde_json::json!({ "kind": "shell", "script": script, "timeout_secs": 600 });
    let resp = client
        .post(format!("{base}/v1/projects/demo/commands"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await;
    let cmd: serde_json::Value = resp.unwrap().json().await.unwrap();
    cmd["id"].as_str().expect("command id").to_owned()
}

/// Reads SSE events from a response, calling `on_event(event, id, data)` per event until `end`.
async fn read_events(resp: reqwest::Response, mut on_event: impl FnMut(&str, &str, &str)) {
    let mut body = resp.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        let mut consumed = 0;
        let mut ended = false;
        while let Some(len) = buffer[consumed..].find("\n\n") {
            let block = &buffer[consumed..consumed + len];
            consumed += len + 2;
            let (mut event, mut id, mut data) = ("", "", "");
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v;
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v;
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v;
                }
            }
            on_event(event, id, data);
            ended |= event == "end";
        }
        buffer.drain(..consumed);
        if ended {
            return;
        }
    }
}

async fn bench_stream(base: &str, token: &str, workspace: &std::path::Path) {
    let client = rdev::http_client();
    let exe = std::env::current_exe().unwrap();
    // The emitter waits for the subscriber, so that every line is measured live.
    let script = format!(
        "while [ ! -e go ]; do sleep 0.01; done; rm go; {} emit {LINES}",
        exe.display()
    );
    let id = start_command(&client, base, token, script).await;
    let started = Instant::now();
    let resp = client
        .get(format!("{base}/v1/commands/{id}/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    std::fs::write(workspace.join("go"), "").unwrap();
    let (mut latencies, mut next_line, mut last_seq, mut partial) = (Vec::new(), 1usize, 0i64, String::new());
    read_events(resp, |event, seq, data| {
        if event != "output" {
            return;
        }
        let received = now_ns();
        let seq: i64 = seq.parse().unwrap();
        assert_eq!(seq, last_seq + 1, "events in order without gaps");
        last_seq = seq;
        let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
        partial.push_str(chunk["text"].as_str().unwrap());
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            let (written, number) = line.trim_end().split_once(' ').unwrap();
            assert_eq!(number.parse::<usize>().unwrap(), next_line, "lines in order");
            next_line += 1;
            latencies.push((received - written.parse::<u128>().unwrap()) as f64 / 1e6);
        }
    })
    .await;
    assert_eq!(next_line - 1, LINES, "every line arrived");
    latencies.sort_by(f64::total_cmp);
    println!(
        "{LINES} lines live over SSE in {last_seq} events, {:.2} s: write-to-client latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  (target p99 <= 50 ms)",
        started.elapsed().as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
}

/// Stores a finished command with `REPLAY_EVENTS + 200` one-line output chunks, written
/// directly into the gateway's database so that the event count does not depend on timing.
async fn replay_fixture(data_dir: &std::path::Path) -> String {
    use rdev::store::{AuditEntry, OutputChunk};
    let store = rdev::store::open(&rdev::store::sqlite_url(data_dir)).await.unwrap();
    let id = "cmd_replay_fixture".to_owned();
    let record = fixtures::finished_command(&id, "demo");
    store.insert_command(&record, &[AuditEntry::default()]).await.unwrap();
    let chunks: Vec<_> = (1..=REPLAY_EVENTS + 200)
        .map(|seq| OutputChunk {
            command_id: id.clone(),
            seq,
            stream: "stdout".into(),
            text: format!("{} {seq} some typical build output\n", now_ns()),
        })
        .collect();
    store.append_output(std::sync::Arc::new(chunks)).await.unwrap();
    id
}

async fn bench_replay(base: &str, token: &str, data_dir: &std::path::Path) {
    let client = rdev::http_client();
    let id = replay_fixture(data_dir).await;
    let after = 200;
    let mut times = Vec::new();
    for _ in 0..REPLAY_RUNS {
        let started = Instant::now();
        let req = client.get(format!("{base}/v1/commands/{id}/stream")).bearer_auth(token);
        let resp = req.header("Last-Event-ID", after.to_string()).send().await.unwrap();
        let mut received = 0;
        read_events(resp, |event, _, _| received += i64::from(event == "output")).await;
        assert_eq!(received, REPLAY_EVENTS);
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "replay of {REPLAY_EVENTS} events after Last-Event-ID: p50 {:.2} ms, p99 {:.2} ms over {REPLAY_RUNS} runs  (target <= 20 ms)",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

/// Both gateways of benchmark 1, on one workspaces directory (the limited one serves the other
/// benchmarks).
fn start_servers(dir: &std::path::Path) -> Servers {
    let workspaces = dir.join("workspaces");
    let limited = start_server(workspaces.clone(), dir.join("data"), unrefused_limits());
    let off = LimitsConfig {
        enabled: false,
        ..LimitsConfig::default()
    };
    let unlimited = start_server(workspaces, dir.join("data-unlimited"), off);
    Servers { limited, unlimited }
}

/// What the request path's trace spans cost while nothing exports them (their call sites are
/// disabled), as a share of one request at the throughput `requests_per_sec`.
fn bench_disabled_spans(requests_per_sec: f64) {
    const ROUNDS: u32 = 1_000_000;
    let headers = axum::http::HeaderMap::new();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let (request, trace_id) =
            rdev::telemetry::traces::request_span(&axum::http::Method::GET, "/v1/projects", "/v1/projects", &headers);
        let auth = tracing::info_span!(target: rdev::telemetry::traces::TARGET, "authenticate");
        std::hint::black_box((&request, &auth, trace_id));
        rdev::telemetry::traces::record_status(&request, 200);
    }
    let per_request = started.elapsed().as_secs_f64() / f64::from(ROUNDS);
    println!(
        "trace spans with no exporter: {:.1} ns per request = {:.3}% of a request at {requests_per_sec:.0} req/s  (target <= 2%)",
        per_request * 1e9,
        100.0 * per_request * requests_per_sec
    );
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    // Log as in production (JSON at info), into a sink, so that logging costs are measured.
    rdev::telemetry::init_with_writer(rdev::config::LogFormat::Json, std::io::sink);
    let workspaces = dir.path().join("workspaces");
    let servers = start_servers(dir.path());
    let requests_per_sec = bench_projects(&servers).await;
    bench_disabled_spans(requests_per_sec);
    let (base, token) = servers.limited;
    bench_stream(&base, &token, &workspaces.join("demo")).await;
    bench_replay(&base, &token, &dir.path().join("data")).await;
}

/// An OTLP/HTTP receiver that accepts and drops every export, on a runtime of its own; its URL.
fn start_trace_sink() -> String {
    server::on_own_runtime("trace-sink", |tx| async move {
        let app = Router::new().route("/v1/traces", axum::routing::post(|| async { "" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(format!("http://{}/v1/traces", listener.local_addr().unwrap()))
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    })
}

/// Logs as in production and, if `traced`, exports every span to a sink of its own through the
/// provider returned (which must live as long as the process serves).
fn init_telemetry(traced: bool) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    if !traced {
        rdev::telemetry::init_with_writer(rdev::config::LogFormat::Json, std::io::sink);
        return None;
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(start_trace_sink())
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    rdev::telemetry::init_exporting(rdev::config::LogFormat::Json, std::io::sink, &provider);
    Some(provider)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "emit") {
        let lines = args.get(i + 1).and_then(|n| n.parse().ok()).expect("line count");
        emit(lines, args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(0));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if args.iter().any(|a| a == "serve") {
        // For an external load tool (scripts/bench-wrk.sh): print the URLs and tokens of the
        // gateway with limits and of the one without, then serve.
        let dir = tempfile::tempdir().unwrap();
        let _exporting = init_telemetry(args.iter().any(|a| a == "--traced"));
        let Servers { limited, unlimited } = start_servers(dir.path());
        println!("{} {} {} {}", limited.0, limited.1, unlimited.0, unlimited.1);
        loop {
            std::thread::park();
        }
    }
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(run());
}
