//! Replica benchmarks: real `rdev serve` processes on one PostgreSQL database, each figure against
//! a baseline measured in the same run:
//! 1. live output at 1,000 lines/s written on the owning replica, reaching an SSE client on the
//!    other replica (through `NOTIFY` and the store), against a client on the owner itself;
//! 2. queued → running when the slot frees on another replica (the owner is stopping, as in a
//!    rolling update, so the peer must claim), against a slot freeing on a lone replica.
//!
//! Needs PostgreSQL at `RDEV_BENCH_DATABASE_URL`: `scripts/bench-replicas.sh` starts a throwaway
//! cluster and runs this. Invoked as `replicas emit N PAUSE_US`, the binary is the line emitter.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;

#[path = "support/lines.rs"]
mod lines;
#[path = "support/process.rs"]
mod process;

use lines::{emit, now_ns, percentile};

const LINES: usize = 10_000;
const LINE_PAUSE_US: u64 = 1_000;
const SLOT_RUNS: usize = 20;

fn summary(label: &str, mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&values, 0.5), percentile(&values, 0.99));
    println!(
        "{label:<52} n={:<6} p50 {p50:8.2} ms  p99 {p99:8.2} ms  max {:8.2} ms",
        values.len(),
        values[values.len() - 1]
    );
    (p50, p99)
}

/// One gateway process.
struct Replica {
    config: PathBuf,
    child: Option<Child>,
    url: String,
}

impl Replica {
    /// Starts a replica with its own data directory; the first one (`first`) prints the admin
    /// token.
    fn start(
        dir: &Path,
        database_url: &str,
        workspaces: &Path,
        secret: &Path,
        first: bool,
    ) -> (Replica, Option<String>) {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("rdev.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\ndatabase_url = {database_url:?}\nplugins = []\n\
                 shutdown_grace_secs = 30\nauth.key_hash_secret_file = {secret:?}\nbackend.workspaces = {workspaces:?}\n\
                 limits.enabled = false\n[projects.demo]\nmax_concurrent_commands = 1\n",
                dir.join("data"),
            ),
        )
        .unwrap();
        let mut replica = Replica {
            config,
            child: None,
            url: String::new(),
        };
        let token = replica.launch(first);
        (replica, token)
    }

    /// Starts the process; reads the bootstrap token if `first` (only a first start prints one).
    fn launch(&mut self, first: bool) -> Option<String> {
        let launched = process::launch(&self.config, first);
        self.url = launched.url;
        self.child = Some(launched.child);
        launched.token
    }

    /// SIGTERM: the replica stops claiming, lets its command finish and leaves.
    fn terminate(&mut self) -> std::thread::JoinHandle<()> {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        std::thread::spawn(move || {
            let _ = child.wait();
        })
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Cluster {
    client: reqwest::Client,
    token: String,
    replicas: Vec<Replica>,
    pool: sqlx::PgPool,
    workspaces: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(server: &str, count: usize) -> Cluster {
        let admin = sqlx::PgPool::connect(server).await.unwrap();
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        let database_url = format!("{base}/{name}");
        let dir = tempfile::tempdir().unwrap();
        let workspaces = dir.path().join("workspaces");
        let secret = dir.path().join("key-hash.secret");
        let mut token = None;
        let mut replicas = Vec::new();
        for i in 0..count {
            let home = dir.path().join(format!("r{i}"));
            let (replica, printed) = Replica::start(&home, &database_url, &workspaces, &secret, i == 0);
            token = token.or(printed);
            replicas.push(replica);
        }
        let cluster = Cluster {
            client: rdev::http_client(),
            token: token.expect("the first replica prints the admin token"),
            replicas,
            pool: sqlx::PgPool::connect(&database_url).await.unwrap(),
            workspaces,
            _dir: dir,
        };
        cluster.wait_ready().await;
        cluster
    }

    async fn get(&self, url: &str) -> Option<Value> {
        let resp = self.client.get(url).bearer_auth(&self.token).send().await.ok()?;
        resp.json().await.ok()
    }

    async fn submit(&self, replica: usize, script: &str) -> String {
        let url = format!("{}/v1/projects/demo/commands", self.replicas[replica].url);
        let body = json!({ "kind": "shell", "script": script, "timeout_secs": 600 });
        let resp = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// A command as the first replica that answers sees it (one may be stopping).
    async fn command(&self, id: &str) -> Value {
        loop {
            for r in &self.replicas {
                if let Some(cmd) = self.get(&format!("{}/v1/commands/{id}", r.url)).await {
                    return cmd;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_state(&self, id: &str, done: bool) -> Value {
        loop {
            let cmd = self.command(id).await;
            let state = cmd["state"].as_str().unwrap_or_default();
            if (done && !["queued", "running"].contains(&state)) || (!done && state == "running") {
                return cmd;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn replica_index(&self, id: &str) -> usize {
        let owner = self.wait_state(id, false).await["replica_id"].clone();
        for (i, r) in self.replicas.iter().enumerate() {
            if self
                .get(&format!("{}/ready", r.url))
                .await
                .is_some_and(|ready| ready["replica_id"] == owner)
            {
                return i;
            }
        }
        panic!("no replica owns {id}");
    }

    /// Waits until every replica is ready and sees all the others (a replica sends its peers
    /// notices once a heartbeat has shown it that it has some).
    async fn wait_ready(&self) {
        for r in &self.replicas {
            let url = format!("{}/ready", r.url);
            loop {
                let ready = self.get(&url).await;
                if ready.is_some_and(|v| v["status"] == "ready" && v["replicas_live"] == self.replicas.len()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Milliseconds from the end of `blocker` to the start of `next`, from the database.
    async fn handover_ms(&self, blocker: &str, next: &str) -> f64 {
        let row = sqlx::query(
            "SELECT (extract(epoch FROM n.started_at - b.finished_at) * 1000)::float8 AS ms \
             FROM commands b, commands n WHERE b.id = $1 AND n.id = $2",
        )
        .bind(blocker)
        .bind(next)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        row.get("ms")
    }
}

/// Write-to-client latencies (ms) of every live line of a command's stream.
async fn follow(client: reqwest::Client, url: String, token: String) -> Vec<f64> {
    let resp = client.get(url).bearer_auth(token).send().await.unwrap();
    let mut body = resp.bytes_stream();
    let (mut buffer, mut latencies) = (String::new(), Vec::new());
    while let Some(bytes) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.starts_with("event: end") {
                return latencies;
            }
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let received = now_ns();
            let text = serde_json::from_str::<Value>(data).unwrap()["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for line in text.lines() {
                if let Some(Ok(written)) = line.split(' ').next().map(str::parse::<u128>) {
                    latencies.push((received.saturating_sub(written)) as f64 / 1e6);
                }
            }
        }
    }
    latencies
}

async fn bench_cross_replica_output(server: &str) {
    let cluster = Cluster::start(server, 2).await;
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "while [ ! -e go ]; do sleep 0.01; done; rm go; {} emit {LINES} {LINE_PAUSE_US}",
        exe.display()
    );
    let id = cluster.submit(0, &script).await;
    let owner = cluster.replica_index(&id).await;
    let streams: Vec<_> = [owner, 1 - owner]
        .iter()
        .map(|&i| {
            let url = format!("{}/v1/commands/{id}/stream", cluster.replicas[i].url);
            tokio::spawn(follow(cluster.client.clone(), url, cluster.token.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(cluster.workspaces.join("demo/go"), "").unwrap();
    let mut results = futures::future::join_all(streams).await.into_iter().map(Result::unwrap);
    let (local, remote) = (results.next().unwrap(), results.next().unwrap());
    assert_eq!(
        (local.len(), remote.len()),
        (LINES, LINES),
        "every line reaches both clients"
    );
    println!(
        "1. {LINES} lines at {} lines/s, written on the owning replica",
        1_000_000 / LINE_PAUSE_US
    );
    let (_, local99) = summary("   client on the owner (baseline)", local);
    let (_, remote99) = summary("   client on the other replica", remote);
    println!(
        "   p99 other/owner: {:.2}x  (target: p99 <= 50 ms on the other replica)",
        remote99 / local99
    );
}

async fn bench_slot_handover(server: &str) {
    let mut lone = Vec::new();
    {
        let cluster = Cluster::start(server, 1).await;
        for _ in 0..SLOT_RUNS {
            let blocker = cluster.submit(0, "sleep 0.2").await;
            cluster.wait_state(&blocker, false).await;
            let next = cluster.submit(0, "true").await;
            cluster.wait_state(&next, true).await;
            lone.push(cluster.handover_ms(&blocker, &next).await);
        }
    }
    let mut cross = Vec::new();
    let mut cluster = Cluster::start(server, 2).await;
    for _ in 0..SLOT_RUNS {
        let blocker = cluster.submit(0, "sleep 0.5").await;
        let owner = cluster.replica_index(&blocker).await;
        let next = cluster.submit(1 - owner, "true").await;
        let stopped = cluster.replicas[owner].terminate();
        cluster.wait_state(&next, true).await;
        let claimer = cluster.command(&next).await["replica_id"].clone();
        assert_ne!(
            claimer,
            cluster.command(&blocker).await["replica_id"],
            "the peer claimed it"
        );
        cross.push(cluster.handover_ms(&blocker, &next).await);
        stopped.join().unwrap();
        cluster.replicas[owner].launch(false);
        cluster.wait_ready().await;
    }
    println!("2. queued -> running after the slot frees ({SLOT_RUNS} runs each)");
    let (_, lone99) = summary("   slot frees on the same (lone) replica (baseline)", lone);
    let (_, cross99) = summary("   slot frees on another replica (it is stopping)", cross);
    println!("   p99 other/same: {:.2}x  (target: p99 <= 100 ms)", cross99 / lone99);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "emit") {
        let lines = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(10);
        emit(lines, args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(0));
        return;
    }
    let Ok(server) = std::env::var("RDEV_BENCH_DATABASE_URL") else {
        eprintln!("RDEV_BENCH_DATABASE_URL is not set: run scripts/bench-replicas.sh");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        bench_cross_replica_output(&server).await;
        bench_slot_handover(&server).await;
        println!("({:.0} s)", started.elapsed().as_secs_f64());
    });
}
