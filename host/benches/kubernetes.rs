//! Kubernetes backend benchmarks against the in-process fake API server, each compared with the
//! same kube-rs exec called directly against the same server in the same run:
//! 1. time to first output byte of a command printing one line (p50/p99 of both paths);
//! 2. streaming throughput of a command writing 64 MiB (MB/s of both paths, and their ratio);
//! 3. discovery latency: from a labelled pod's creation to the project being listed.
//!
//! 1 and 2 also print where the gateway's time goes: the parts of the first-byte path, the CPU
//! per thread, and the SQLite store alone doing the same calls.
//!
//! Run with `cargo bench --bench kubernetes [-- first-byte|stream|discovery]`. The fake cluster,
//! the gateway and the client each run on their own thread (the first two on one-worker
//! runtimes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_apiserver::{FakeApiServer, PodSpec};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess};
use rdev::config::{BackendConfig, BackendKind, Config, KubernetesConfig};
use rdev::plugins::manifest::{PluginManifest, World};
use tokio::io::{AsyncRead, AsyncReadExt};

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/server.rs"]
mod server;

const NAMESPACE: &str = "workspaces";
const PREFIX: &str = "rdev.orchard9.ai";
const PROJECT: &str = "bench";
const POD: &str = "bench-0";
const FIRST_BYTE_RUNS: usize = 200;
const WARM_UP_RUNS: usize = 10;
const STREAM_BYTES: u64 = 64 * 1024 * 1024;
const STREAM_ROUNDS: usize = 5;
const DISCOVERY_SAMPLES: usize = 20;
const POLL: Duration = Duration::from_millis(5);
/// The gateway's exec buffers (`exec/kubernetes/target.rs`), used for the direct exec too.
const STREAM_BUFFER: usize = 256 * 1024;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Starts the fake API server on its own thread with a one-worker runtime.
fn start_cluster() -> FakeApiServer {
    server::on_own_runtime("fake-cluster", |tx| async move {
        tx.send(FakeApiServer::start().await).unwrap();
        std::future::pending::<()>().await;
    })
}

/// A running pod labelled as project `name`, with its workspace at `dir`.
fn workspace_pod(pod: &str, name: &str, dir: &Path) -> PodSpec {
    let labels = BTreeMap::from([
        (format!("{PREFIX}/project"), "true".to_owned()),
        (format!("{PREFIX}/name"), name.to_owned()),
    ]);
    let annotations = BTreeMap::from([(format!("{PREFIX}/workspace"), dir.to_string_lossy().into_owned())]);
    PodSpec {
        name: pod.to_owned(),
        labels,
        annotations,
        containers: vec!["main".to_owned()],
    }
}

/// A gateway on the kubernetes backend with the label-discovery plugin as its only plugin.
fn gateway_config(data_dir: PathBuf, kubeconfig: PathBuf) -> Config {
    let discovery = Path::new(env!("RDEV_DEFAULT_PLUGINS_DIR")).join("label_discovery.wasm");
    let discovery = PluginManifest::new(
        "label-discovery",
        World::ProjectDiscovery,
        discovery.to_str().unwrap(),
        0,
    );
    let mut config = Config {
        data_dir,
        plugins: Some(vec![discovery]),
        backend: BackendConfig {
            kind: BackendKind::Kubernetes,
            kubernetes: KubernetesConfig {
                kubeconfig: Some(kubeconfig),
                namespace: Some(NAMESPACE.into()),
                ..KubernetesConfig::default()
            },
            ..BackendConfig::default()
        },
        ..Config::default()
    };
    // The whole stream is kept, so that it is never cut short by the output limit.
    config.commands.max_output_bytes = 2 * STREAM_BYTES;
    config.limits.enabled = false;
    config.validate().unwrap();
    config
}

/// Starts the gateway on its own thread with a one-worker runtime, as `rdev serve` would (the
/// discovery refresher included). Returns the base URL and an admin token.
fn start_gateway(config: Config) -> (String, String) {
    server::serve_gateway(config, |state| {
        state.projects.spawn_refresher(Duration::from_secs(2));
        axum::Router::new()
    })
}

/// A kube client built from the same kubeconfig the gateway reads.
async fn direct_pods(kubeconfig: &str) -> Api<Pod> {
    let file = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .unwrap();
    Api::namespaced(kube::Client::try_from(config).unwrap(), NAMESPACE)
}

/// Server-Sent Events read off a response body.
struct Sse {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
    event: String,
    data: Option<Vec<u8>>,
}

impl Sse {
    fn new(resp: reqwest::Response) -> Self {
        assert!(resp.status().is_success(), "{}", resp.status());
        Self {
            body: resp.bytes_stream().boxed(),
            buffer: Vec::new(),
            event: String::new(),
            data: None,
        }
    }

    /// The next event's name and data; `None` when the body ends.
    async fn next(&mut self) -> Option<(String, Vec<u8>)> {
        loop {
            if let Some(event) = self.parse() {
                return Some(event);
            }
            let chunk = self.body.next().await?.unwrap();
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Consumes buffered lines up to the end of one event, if a whole event is buffered.
    fn parse(&mut self) -> Option<(String, Vec<u8>)> {
        let mut start = 0;
        let mut found = None;
        while let Some(len) = self.buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buffer[start..start + len];
            start += len + 1;
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    found = Some((std::mem::take(&mut self.event), data));
                    break;
                }
            } else if let Some(name) = line.strip_prefix(b"event: ") {
                self.event = String::from_utf8_lossy(name).into_owned();
            } else if let Some(data) = line.strip_prefix(b"data: ") {
                self.data = Some(data.to_vec());
            }
        }
        self.buffer.drain(..start);
        found
    }
}

/// The `text` of an `output` event's data.
fn output_text(data: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Chunk {
        text: String,
    }
    serde_json::from_slice::<Chunk>(data).unwrap().text
}

/// The gateway's HTTP API, as a client sees it.
struct Gateway {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Gateway {
    async fn start_command(&self, script: &str) -> String {
        let body = serde_json::json!({ "kind": "shell", "script": script, "timeout_secs": 600 });
        let url = format!("{}/v1/projects/{PROJECT}/commands", self.base);
        let resp = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
        let cmd: serde_json::Value = resp.json().await.unwrap();
        cmd["id"].as_str().expect("command id").to_owned()
    }

    async fn stream(&self, id: &str) -> Sse {
        let url = format!("{}/v1/commands/{id}/stream", self.base);
        Sse::new(self.client.get(url).bearer_auth(&self.token).send().await.unwrap())
    }

    async fn project_names(&self) -> Vec<String> {
        let url = format!("{}/v1/projects", self.base);
        let resp = self.client.get(url).bearer_auth(&self.token).send().await.unwrap();
        let list: serde_json::Value = resp.json().await.unwrap();
        let projects = list["projects"].as_array().unwrap();
        projects
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn wait_listed(&self, name: &str) {
        while !self.project_names().await.iter().any(|n| n == name) {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One gateway run's times, in ms from before the POST: the 202, the stream's headers, the
/// first `output` event.
struct GatewayFirstByte {
    accepted: f64,
    subscribed: f64,
    first: f64,
}

/// Runs `echo ready` through the gateway, timing up to its first output, then waits for its end.
async fn gateway_first_byte(gw: &Gateway) -> GatewayFirstByte {
    let started = Instant::now();
    let id = gw.start_command("echo ready").await;
    let accepted = ms(started);
    let mut sse = gw.stream(&id).await;
    let subscribed = ms(started);
    let mut first = None;
    while let Some((event, data)) = sse.next().await {
        if event == "output" && first.is_none() {
            first = Some(ms(started));
            assert_eq!(output_text(&data), "ready\n");
        }
        if event == "end" {
            break;
        }
    }
    let first = first.expect("an output event");
    GatewayFirstByte {
        accepted,
        subscribed,
        first,
    }
}

fn attach_params() -> AttachParams {
    AttachParams {
        container: Some("main".into()),
        stdout: true,
        stderr: true,
        stdin: false,
        tty: false,
        max_stdin_buf_size: Some(STREAM_BUFFER),
        max_stdout_buf_size: Some(STREAM_BUFFER),
        max_stderr_buf_size: Some(STREAM_BUFFER),
    }
}

async fn direct_exec(pods: &Api<Pod>, script: &str) -> AttachedProcess {
    pods.exec(POD, ["sh", "-c", script], &attach_params()).await.unwrap()
}

/// Reads `reader` to its end; returns the byte count and when the first byte arrived.
async fn drain(mut reader: impl AsyncRead + Unpin) -> (u64, Option<Instant>) {
    let mut buf = vec![0u8; STREAM_BUFFER];
    let (mut total, mut first) = (0u64, None);
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            return (total, first);
        }
        first.get_or_insert_with(Instant::now);
        total += n as u64;
    }
}

/// Runs `echo ready` by a direct exec: ms from the call to the first stdout byte.
async fn direct_first_byte(pods: &Api<Pod>) -> f64 {
    let started = Instant::now();
    let mut process = direct_exec(pods, "echo ready").await;
    let status = process.take_status().unwrap();
    let (bytes, first) = drain(process.stdout().unwrap()).await;
    assert_eq!(bytes, 6);
    assert_eq!(status.await.and_then(|s| s.status).as_deref(), Some("Success"));
    (first.unwrap() - started).as_secs_f64() * 1e3
}

fn print_percentiles(label: &str, values: Vec<f64>) -> f64 {
    let values = sorted(values);
    let (p50, p99) = (percentile(&values, 0.5), percentile(&values, 0.99));
    println!("   {label:<42} p50 {p50:6.2} ms   p99 {p99:6.2} ms");
    p99
}

async fn bench_first_byte(gw: &Gateway, pods: &Api<Pod>) {
    for _ in 0..WARM_UP_RUNS {
        gateway_first_byte(gw).await;
        direct_first_byte(pods).await;
    }
    let (mut through, mut direct) = (Vec::new(), Vec::new());
    for i in 0..FIRST_BYTE_RUNS {
        // Alternate which path goes first, so that neither always follows the other.
        if i % 2 == 0 {
            through.push(gateway_first_byte(gw).await);
            direct.push(direct_first_byte(pods).await);
        } else {
            direct.push(direct_first_byte(pods).await);
            through.push(gateway_first_byte(gw).await);
        }
    }
    println!("1. time to first output byte of `echo ready` ({FIRST_BYTE_RUNS} runs each, interleaved)");
    let direct_p99 = print_percentiles("direct kube exec (call -> first stdout byte)", direct);
    let gateway_p99 = print_percentiles(
        "gateway (POST -> first `output` event)",
        through.iter().map(|t| t.first).collect(),
    );
    print_percentiles("  of which POST -> 202", through.iter().map(|t| t.accepted).collect());
    print_percentiles(
        "  of which 202 -> stream headers",
        through.iter().map(|t| t.subscribed - t.accepted).collect(),
    );
    print_percentiles(
        "  of which headers -> first event",
        through.iter().map(|t| t.first - t.subscribed).collect(),
    );
    println!(
        "   p99 difference: {:+.2} ms  (target <= +5 ms)",
        gateway_p99 - direct_p99
    );
}

fn stream_script() -> String {
    format!("head -c {STREAM_BYTES} /dev/zero | tr '\\0' a")
}

/// Streams a command's output through the gateway until its `end` event: bytes of `output`
/// text.
async fn read_output(gw: &Gateway, id: &str) -> u64 {
    let mut sse = gw.stream(id).await;
    let mut total = 0u64;
    while let Some((event, data)) = sse.next().await {
        match event.as_str() {
            "output" => total += output_text(&data).len() as u64,
            "end" => break,
            _ => {}
        }
    }
    total
}

/// Streams the 64 MiB command through the gateway: its id, bytes and seconds, from before the
/// POST to the `end` event.
async fn gateway_stream(gw: &Gateway) -> (String, u64, f64) {
    let started = Instant::now();
    let id = gw.start_command(&stream_script()).await;
    let total = read_output(gw, &id).await;
    (id, total, started.elapsed().as_secs_f64())
}

/// Streams the 64 MiB command by a direct exec: bytes and seconds, from the call to the status.
async fn direct_stream(pods: &Api<Pod>) -> (u64, f64) {
    let started = Instant::now();
    let mut process = direct_exec(pods, &stream_script()).await;
    let status = process.take_status().unwrap();
    let (total, _) = drain(process.stdout().unwrap()).await;
    assert_eq!(status.await.and_then(|s| s.status).as_deref(), Some("Success"));
    (total, started.elapsed().as_secs_f64())
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    assert_eq!(bytes, STREAM_BYTES, "the whole stream arrived");
    bytes as f64 / secs / 1e6
}

/// CPU per thread role, summed over rounds.
type CpuTotals = BTreeMap<&'static str, f64>;

/// CPU time so far of this process's threads, in ms, by role: the gateway's worker, its SQLite
/// connections, the fake cluster, the client (the main thread), and the rest.
fn thread_cpu_ms() -> CpuTotals {
    let mut by_role = BTreeMap::new();
    let pid = std::process::id().to_string();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let (comm, schedstat) = (read("comm"), read("schedstat"));
        let role = match comm.trim() {
            "gateway" => "gateway worker",
            "fake-cluster" => "fake cluster",
            c if c.starts_with("sqlx-sqlite") => "sqlite",
            _ if task.file_name().to_str() == Some(pid.as_str()) => "client",
            _ => "other threads",
        };
        let ns: f64 = schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        *by_role.entry(role).or_insert(0.0) += ns / 1e6;
    }
    by_role
}

/// Adds the CPU each role used since `before` to `totals`.
fn add_cpu_since(totals: &mut CpuTotals, before: &CpuTotals) {
    for (role, now) in thread_cpu_ms() {
        *totals.entry(role).or_insert(0.0) += now - before.get(role).copied().unwrap_or(0.0);
    }
}

fn print_cpu(label: &str, totals: &CpuTotals) {
    let parts: Vec<String> = totals
        .iter()
        .map(|(role, ms)| format!("{role} {:.0}", ms / STREAM_ROUNDS as f64))
        .collect();
    println!("   CPU ms per 64 MiB, {label}: {}", parts.join(", "));
}

/// One round of each path: the gateway's command id and MB/s, and the direct exec's MB/s.
async fn stream_round(gw: &Gateway, pods: &Api<Pod>, cpu: &mut [CpuTotals; 2]) -> (String, f64, f64) {
    let before = thread_cpu_ms();
    let (id, bytes, secs) = gateway_stream(gw).await;
    add_cpu_since(&mut cpu[0], &before);
    let through = mb_per_s(bytes, secs);
    let before = thread_cpu_ms();
    let (bytes, secs) = direct_stream(pods).await;
    add_cpu_since(&mut cpu[1], &before);
    (id, through, mb_per_s(bytes, secs))
}

/// Returns the id of a finished 64 MiB command.
async fn bench_stream(gw: &Gateway, pods: &Api<Pod>) -> String {
    println!(
        "2. streaming {} MiB of output ({STREAM_ROUNDS} rounds, alternating)",
        STREAM_BYTES >> 20
    );
    let (mut through, mut direct, mut last_id) = (Vec::new(), Vec::new(), String::new());
    let mut cpu = [CpuTotals::new(), CpuTotals::new()];
    for round in 1..=STREAM_ROUNDS {
        let (id, g, d) = stream_round(gw, pods, &mut cpu).await;
        println!(
            "   round {round}: gateway {g:6.1} MB/s   direct {d:6.1} MB/s   ratio {:5.1}%",
            100.0 * g / d
        );
        through.push(g);
        direct.push(d);
        last_id = id;
    }
    let (g, d) = (sorted(through)[STREAM_ROUNDS / 2], sorted(direct)[STREAM_ROUNDS / 2]);
    println!(
        "   medians: gateway {g:.1} MB/s, direct {d:.1} MB/s, ratio {:.1}%  (target >= 80%)",
        100.0 * g / d
    );
    print_cpu("gateway path", &cpu[0]);
    print_cpu("direct path", &cpu[1]);
    last_id
}

/// Where the gateway's streaming time goes: replaying a finished 64 MiB command from the store
/// over SSE, and the store alone appending 64 MiB.
async fn bench_stream_parts(gw: &Gateway, finished: &str, scratch: &Path) {
    let started = Instant::now();
    let replayed = read_output(gw, finished).await;
    println!(
        "   replay of a finished 64 MiB command over SSE: {:.1} MB/s",
        mb_per_s(replayed, started.elapsed().as_secs_f64())
    );
    for per_call in [1, 16] {
        let mb = store_append(scratch, per_call).await;
        println!("   SQLite store alone, append_output of {per_call:>2} x 64 KiB per call: {mb:.1} MB/s");
    }
}

/// The store calls on the way from `POST …/commands` to the first `output` event, in order:
/// the POST's insert, dispatch and re-read, the runner's process group and first chunk, the
/// stream's look-ups and replay. Returns ms.
async fn store_path(store: &dyn rdev::store::Store, n: usize) -> f64 {
    use rdev::store::{AuditEntry, CommandState, OutputChunk, Transition};
    let id = format!("cmd_path_{n}");
    let record = rdev::store::CommandRecord {
        state: CommandState::Queued,
        queue_seq: n as i64,
        ..fixtures::finished_command(&id, PROJECT)
    };
    let started = Instant::now();
    store.insert_command(&record, &[AuditEntry::default()]).await.unwrap();
    store.next_queued(PROJECT).await.unwrap().expect("queued");
    store.count_running(PROJECT).await.unwrap();
    let change = Transition {
        id: &id,
        from: &[CommandState::Queued],
        to: CommandState::Running,
        exit_code: None,
        reason: None,
        at: 3,
        audit: AuditEntry::default(),
    };
    assert!(store.transition(&change).await.unwrap());
    store.get_command(&id).await.unwrap();
    store.set_process_group(&id, "kubernetes:bench", 42).await.unwrap();
    let chunk = OutputChunk {
        command_id: id.clone(),
        seq: 1,
        stream: "stdout".into(),
        text: "ready\n".into(),
    };
    store.append_output(std::sync::Arc::new(vec![chunk])).await.unwrap();
    store.get_command(&id).await.unwrap();
    store.get_command(&id).await.unwrap();
    store.output_after(&id, 0, 1000).await.unwrap();
    ms(started)
}

/// The same store calls as a command's way to its first output, alone, on a fresh database.
async fn bench_store_path(scratch: &Path) {
    let dir = scratch.join("store-path");
    std::fs::create_dir_all(&dir).unwrap();
    let store = rdev::store::open(&rdev::store::sqlite_url(&dir)).await.unwrap();
    let mut times = Vec::new();
    for n in 0..FIRST_BYTE_RUNS {
        times.push(store_path(store.as_ref(), n).await);
    }
    print_percentiles("SQLite alone, the path's 10 store calls", times);
}

/// MB/s of `append_output` storing 64 MiB in 64 KiB chunks, `per_call` chunks per call, in a
/// fresh SQLite database configured as the gateway's.
async fn store_append(scratch: &Path, per_call: usize) -> f64 {
    use rdev::store::{AuditEntry, OutputChunk};
    let dir = scratch.join(format!("store-{per_call}"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = rdev::store::open(&rdev::store::sqlite_url(&dir)).await.unwrap();
    let record = fixtures::finished_command("cmd_store_bench", PROJECT);
    store.insert_command(&record, &[AuditEntry::default()]).await.unwrap();
    let chunk_bytes = 64 * 1024;
    let chunks = (STREAM_BYTES as usize) / chunk_bytes;
    let text = "a".repeat(chunk_bytes);
    let started = Instant::now();
    for first in (0..chunks).step_by(per_call) {
        let batch: Vec<_> = (first..first + per_call)
            .map(|seq| OutputChunk {
                command_id: "cmd_store_bench".into(),
                seq: seq as i64 + 1,
                stream: "stdout".into(),
                text: text.clone(),
            })
            .collect();
        store.append_output(std::sync::Arc::new(batch)).await.unwrap();
    }
    mb_per_s(STREAM_BYTES, started.elapsed().as_secs_f64())
}

async fn bench_discovery(gw: &Gateway, cluster: &FakeApiServer, pods_root: &Path) {
    let mut times = Vec::new();
    for i in 0..DISCOVERY_SAMPLES {
        let name = format!("found-{i}");
        let dir = pods_root.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let started = Instant::now();
        cluster.create_pod(NAMESPACE, workspace_pod(&format!("{name}-0"), &name, &dir));
        gw.wait_listed(&name).await;
        times.push(ms(started));
    }
    println!(
        "3. discovery: create_pod -> listed in GET /v1/projects (polled every {} ms, {DISCOVERY_SAMPLES} pods)",
        POLL.as_millis()
    );
    print_percentiles("", times);
    println!("   (target: within 1 s)");
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    // Log as in production (JSON at info), into a sink, so that logging costs are measured.
    rdev::telemetry::init_with_writer(rdev::config::LogFormat::Json, std::io::sink);
    let cluster = start_cluster();
    let kubeconfig = cluster.kubeconfig(NAMESPACE);
    std::fs::write(dir.path().join("kubeconfig.yaml"), &kubeconfig).unwrap();
    let pods_root = dir.path().join("pods");
    let workspace = pods_root.join(PROJECT);
    std::fs::create_dir_all(&workspace).unwrap();
    cluster.create_pod(NAMESPACE, workspace_pod(POD, PROJECT, &workspace));
    let config = gateway_config(dir.path().join("data"), dir.path().join("kubeconfig.yaml"));
    let (base, token) = start_gateway(config);
    let gw = Gateway {
        client: rdev::http_client(),
        base,
        token,
    };
    gw.wait_listed(PROJECT).await;
    let pods = direct_pods(&kubeconfig).await;
    if selected("first-byte") {
        bench_first_byte(&gw, &pods).await;
        bench_store_path(dir.path()).await;
    }
    if selected("stream") {
        let finished = bench_stream(&gw, &pods).await;
        bench_stream_parts(&gw, &finished, dir.path()).await;
    }
    if selected("discovery") {
        bench_discovery(&gw, &cluster, &pods_root).await;
    }
}

/// Whether benchmark `name` runs: all run unless some are named on the command line
/// (`cargo bench --bench kubernetes -- stream`).
fn selected(name: &str) -> bool {
    let names = ["first-byte", "stream", "discovery"];
    let args: Vec<String> = std::env::args().filter(|a| names.contains(&a.as_str())).collect();
    args.is_empty() || args.iter().any(|a| a == name)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(run());
}
