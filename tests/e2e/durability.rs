//! Nothing lost, nothing stuck: the embedded SQLite database under sustained load and on a full
//! disk, and PostgreSQL stopped the hard way. Faults are injected for real (a small tmpfs, `pg_ctl
//! -m immediate`); every acknowledged write must be in the database afterwards, every fault must
//! answer a retryable 503, and the gateway must heal without a restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::postgres::PrivateCluster;
use crate::common::{Db, Gateway, Reply, send, wait_until};

const WAL_BOUND: u64 = 64 * 1024 * 1024;

fn wal_size(gw: &Gateway) -> u64 {
    std::fs::metadata(gw.dir.join("data/rdev.db-wal")).map_or(0, |m| m.len())
}

/// Four clients submitting commands in a loop for 60 s keep the WAL under its bound, and it
/// shrinks back once the load stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_wal_stays_bounded_under_load_and_shrinks_after() {
    // Accepting is faster than running: the queue bound keeps the load steady (a full queue
    // answers 429 and the client tries again), so the backlog drains quickly afterwards.
    let config = "limits.failed_auth_burst = 100000\n\
                  limits.tiers.default = { requests_per_second = 100000.0, burst = 100000, \
                  commands_per_minute = 100000, max_streams = 100000, max_queued_per_project = 32 }\n\
                  [projects.demo]\nmax_concurrent_commands = 8\n";
    let gw = Gateway::start(Db::Sqlite, config).await;
    let until = Instant::now() + Duration::from_secs(60);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) = (gw.client.clone(), gw.url.clone(), gw.admin_token.clone());
            tokio::spawn(async move {
                let mut accepted = 0u32;
                while Instant::now() < until {
                    let reply = client
                        .post(format!("{url}/v1/projects/demo/commands"))
                        .bearer_auth(&token)
                        .json(&json!({"kind": "shell", "script": "echo hi"}))
                        .send()
                        .await
                        .unwrap();
                    if reply.status() == StatusCode::TOO_MANY_REQUESTS {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    assert_eq!(reply.status(), StatusCode::ACCEPTED);
                    accepted += 1;
                }
                accepted
            })
        })
        .collect();
    let mut peak = 0;
    while Instant::now() < until {
        peak = peak.max(wal_size(&gw));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut accepted = 0;
    for client in clients {
        accepted += client.await.unwrap();
    }
    eprintln!("{accepted} commands accepted in 60 s; WAL peak {peak} bytes");
    assert!(accepted > 100, "only {accepted} commands were accepted");
    assert!(
        peak < WAL_BOUND,
        "the WAL reached {peak} bytes after {accepted} commands"
    );
    wait_until(Duration::from_secs(60), || async {
        let (_, page) = gw.get("/v1/projects/demo/commands?state=running&limit=1").await;
        let (_, queued) = gw.get("/v1/projects/demo/commands?state=queued&limit=1").await;
        page["commands"].as_array().is_some_and(Vec::is_empty)
            && queued["commands"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    wait_until(Duration::from_secs(30), || async { wal_size(&gw) < 1024 * 1024 }).await;
}

/// A tmpfs mounted on a directory for the length of a test.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        assert!(
            crate::common::running_as_root(),
            "this test mounts a tmpfs and must run as root (CI does); run the suite as root"
        );
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for size in [1 << 20, 4096, 1] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// What a write answered: acknowledged with an id, or refused as a retryable fault.
fn acknowledged(reply: &Reply, id_field: &str, what: &str) -> Option<String> {
    match reply.status {
        StatusCode::ACCEPTED | StatusCode::CREATED => Some(reply.body[id_field].as_str().unwrap().to_owned()),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(reply.body["error"]["code"], "unavailable", "{what}: {}", reply.body);
            assert!(
                !reply.header("retry-after").is_empty(),
                "{what}: 503 without Retry-After"
            );
            None
        }
        other => panic!("{what} answered {other}: {}", reply.body),
    }
}

async fn try_command(gw: &Gateway) -> Option<String> {
    let req = gw
        .request(Method::POST, "/v1/projects/demo/commands")
        .bearer_auth(&gw.admin_token)
        .json(&json!({"kind": "shell", "script": "echo stored"}));
    acknowledged(&send(req).await, "id", "POST commands")
}

async fn try_key(gw: &Gateway, n: usize) -> Option<String> {
    let req = gw
        .request(Method::POST, "/v1/keys")
        .bearer_auth(&gw.admin_token)
        .json(&json!({"name": format!("k{n}"), "scopes": ["commands:read"]}));
    acknowledged(&send(req).await, "id", "POST keys")
}

async fn ready_status(gw: &Gateway) -> StatusCode {
    send(gw.request(Method::GET, "/ready")).await.status
}

/// Ids in a table of the database file, read by a connection of our own.
async fn stored_ids(db: &Path, table: &str) -> BTreeSet<String> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let query = format!("SELECT id FROM {table}");
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|(id,)| id).collect()
}

/// Data dir on a small tmpfs, filled up: writes answer 503 (never 500, never a 2xx for what is not
/// stored), `/ready` says so, and freeing the space restores service without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_answers_503_loses_nothing_and_heals() {
    let (tmpfs, mut gw) = Gateway::start_prepared(Db::Sqlite, "plugins = []\n", |dir| {
        Tmpfs::mount(&dir.join("data"), "24m")
    })
    .await;
    let (mut commands, mut keys) = (Vec::new(), Vec::new());
    commands.push(try_command(&gw).await.expect("a write before the disk is full"));
    let filler = tmpfs.fill();

    let mut refused = 0;
    let mut n = 0;
    while refused < 20 {
        n += 1;
        assert!(n < 2000, "writes never failed on a full disk");
        match try_command(&gw).await {
            Some(id) => commands.push(id),
            None => refused += 1,
        }
        match try_key(&gw, n).await {
            Some(id) => keys.push(id),
            None => refused += 1,
        }
    }
    assert_eq!(
        ready_status(&gw).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "/ready on a full disk"
    );
    // Reads keep working on a full disk.
    assert_eq!(gw.get("/v1/keys").await.0, StatusCode::OK);

    std::fs::remove_file(filler).unwrap();
    wait_until(Duration::from_secs(30), || async {
        ready_status(&gw).await == StatusCode::OK
    })
    .await;
    for i in 0..10 {
        commands.push(try_command(&gw).await.expect("a command after the space came back"));
        keys.push(try_key(&gw, 10_000 + i).await.expect("a key after the space came back"));
    }
    for id in &commands {
        let done = gw.wait_done(id).await;
        assert!(done["state"].is_string(), "{done}");
    }

    gw.kill();
    let db = gw.dir.join("data/rdev.db");
    let stored_commands = stored_ids(&db, "commands").await;
    let stored_keys = stored_ids(&db, "api_keys").await;
    for id in &commands {
        assert!(
            stored_commands.contains(id),
            "command {id} was acknowledged but is not stored"
        );
    }
    for id in &keys {
        assert!(stored_keys.contains(id), "key {id} was acknowledged but is not stored");
    }
    gw.restart();
    for id in &commands {
        assert_eq!(gw.get(&format!("/v1/commands/{id}")).await.0, StatusCode::OK);
    }
    drop(gw);
    drop(tmpfs);
}

/// A command printing while the disk fills up: its output waits in memory, is stored once the
/// space is back, and the stored output has every line once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_holds_output_and_stores_it_when_space_returns() {
    let (tmpfs, gw) = Gateway::start_prepared(Db::Sqlite, "plugins = []\n", |dir| {
        Tmpfs::mount(&dir.join("data"), "24m")
    })
    .await;
    // Lines of 2 KB, so that the output needs new pages of the full file system.
    let script = "for i in $(seq 1 40); do printf 'line %d %02000d\\n' $i 0; sleep 0.25; done";
    let id = gw.shell("demo", script).await;
    gw.wait_state(&id, "running").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let filler = tmpfs.fill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    std::fs::remove_file(filler).unwrap();

    let done = gw.wait_done(&id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let held = gw
        .logs
        .lines()
        .iter()
        .any(|l| l.contains("output held: storage unavailable"));
    assert!(held, "the disk never refused the output");
    let expected: Vec<_> = (1..=40).map(|i| format!("line {i} {:02000}", 0)).collect();
    assert_eq!(full_output(&gw, &id).await.lines().collect::<Vec<_>>(), expected);
    drop(gw);
    drop(tmpfs);
}

/// The database file removed under a running gateway: writes and `/ready` answer 503 instead of
/// acknowledging writes into a file that no longer exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_vanished_file_answers_503() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    assert!(try_command(&gw).await.is_some());
    std::fs::rename(gw.dir.join("data/rdev.db"), gw.dir.join("data/moved.db")).unwrap();
    assert_eq!(ready_status(&gw).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(try_command(&gw).await, None);
    assert_eq!(try_key(&gw, 1).await, None);
}

/// A command printing through a PostgreSQL outage; the server is stopped with `pg_ctl -m
/// immediate` and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_fast_keeps_output_and_heals() {
    let cluster = PrivateCluster::start();
    let config = format!(
        "plugins = []\ndatabase_url = {:?}\n[database]\nacquire_timeout_ms = 2000\n",
        cluster.url()
    );
    let (_, gw) = Gateway::start_prepared(Db::Sqlite, &config, |_| ()).await;
    let script = "for i in $(seq 1 60); do echo line $i; sleep 0.25; done";
    let id = gw.shell("demo", script).await;
    gw.wait_state(&id, "running").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.stop_immediate();

    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(try_command(&gw).await, None);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(12), "a 503 took {took:?}");
    }
    let reply = send(gw.request(Method::GET, "/v1/keys").bearer_auth(&gw.admin_token)).await;
    assert_ne!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "an outage is not an authentication failure"
    );
    assert_eq!(ready_status(&gw).await, StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.resume();

    wait_until(Duration::from_secs(30), || async {
        ready_status(&gw).await == StatusCode::OK
    })
    .await;
    let done = gw.wait_done(&id).await;
    let output = full_output(&gw, &id).await;
    let lines: Vec<_> = output.lines().collect();
    match done["state"].as_str() {
        Some("succeeded") => {
            let expected: Vec<_> = (1..=60).map(|i| format!("line {i}")).collect();
            assert_eq!(lines, expected, "output through the outage");
        }
        Some("interrupted") => {
            assert!(done["reason"].as_str().unwrap().contains("storage"), "{done}");
            for (i, line) in lines.iter().enumerate() {
                assert_eq!(*line, format!("line {}", i + 1), "no gap before the interruption");
            }
        }
        _ => panic!("the command ended {done}"),
    }
    assert!(try_command(&gw).await.is_some(), "service resumed without a restart");
}

/// An outage longer than `output_outage_secs`: the command is stopped and ends `interrupted`
/// with a reason that says storage was unavailable, and what was stored has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_past_the_output_bound_interrupts_the_command() {
    let cluster = PrivateCluster::start();
    let config = format!(
        "plugins = []\ndatabase_url = {:?}\ncommands.output_outage_secs = 2\n[database]\nacquire_timeout_ms = 1000\n",
        cluster.url()
    );
    let (_, gw) = Gateway::start_prepared(Db::Sqlite, &config, |_| ()).await;
    let pid_file = gw.workspaces().join("demo/pid");
    let script = "echo $$ > pid; for i in $(seq 1 600); do echo line $i; sleep 0.1; done";
    let id = gw.shell("demo", script).await;
    let pid = crate::common::read_pid(&pid_file).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop_immediate();
    wait_until(Duration::from_secs(30), || async { !crate::common::process_alive(pid) }).await;
    cluster.resume();
    let done = gw.wait_done(&id).await;
    assert_eq!(done["state"], "interrupted", "{done}");
    assert!(
        done["reason"].as_str().unwrap().contains("storage was unavailable"),
        "{done}"
    );
    let output = full_output(&gw, &id).await;
    for (i, line) in output.lines().enumerate() {
        assert_eq!(line, format!("line {}", i + 1), "no gap before the interruption");
    }
}

/// The whole stored output of a command, replayed from its stream.
async fn full_output(gw: &Gateway, id: &str) -> String {
    let reply = gw
        .request(Method::GET, &format!("/v1/commands/{id}/stream"))
        .bearer_auth(&gw.admin_token)
        .send()
        .await
        .unwrap();
    let body = reply.text().await.unwrap();
    let mut text = String::new();
    let mut seqs = Vec::new();
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let event: Value = serde_json::from_str(data).unwrap();
        if let Some(seq) = event["seq"].as_i64() {
            seqs.push(seq);
            text += event["text"].as_str().unwrap();
        }
    }
    let contiguous: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, contiguous, "stored sequence numbers have no gap");
    text
}
