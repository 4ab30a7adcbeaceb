//! Three gateway replicas on one PostgreSQL database behave, to a client, like one gateway:
//! the project limit and priorities hold cluster-wide, any replica streams, cancels and revokes,
//! a killed replica's commands are reconciled by the others and nothing of a live one is touched,
//! and an idempotency key creates one command however many replicas receive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;

use crate::common::sse::{SseStream, output_text};
use crate::common::{Db, Gateway, process_alive, read_pid, send, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// A first gateway and two replicas of it.
async fn three(config: &str) -> Vec<Gateway> {
    let first = Gateway::start(Db::Postgres, config).await;
    let second = first.start_replica().await;
    let third = first.start_replica().await;
    let gws = vec![first, second, third];
    // Each replica learns of its peers at a heartbeat; until then it sends them no notice.
    for gw in &gws {
        wait_until(DEADLINE, || async {
            send(gw.client.get(format!("{}/ready", gw.url))).await.body["replicas_live"] == json!(3)
        })
        .await;
    }
    gws
}

/// The index of the replica that owns a running command.
async fn owner_of(gws: &[Gateway], id: &str) -> usize {
    gws[0].wait_state(id, "running").await;
    let owner = gws[0].command(id).await["replica_id"]
        .as_str()
        .expect("an owner")
        .to_owned();
    for (i, gw) in gws.iter().enumerate() {
        if gw.replica_id().await == owner {
            return i;
        }
    }
    panic!("no replica has id {owner}");
}

/// The others of `i` among three.
fn others(i: usize) -> (usize, usize) {
    ((i + 1) % 3, (i + 2) % 3)
}

async fn started_order(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query("SELECT target FROM audit_events WHERE action = 'command.started' ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("target"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_project_limit_and_priorities_hold_across_replicas() {
    let gws = three("[projects.demo]\nmax_concurrent_commands = 2\n").await;
    let pool = gws[0].postgres().await;
    let most = Arc::new(AtomicI64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (pool, most, sampling) = (pool.clone(), most.clone(), sampling.clone());
        async move {
            while sampling.load(Ordering::SeqCst) {
                let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE state = 'running'")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get("n");
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let gate = "while [ ! -e release ]; do sleep 0.05; done";
    let gates = [gws[0].shell("demo", gate).await, gws[1].shell("demo", gate).await];
    for id in &gates {
        gws[2].wait_state(id, "running").await;
    }
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for i in 0..28 {
        let gw = &gws[i % 3];
        let priority = if i % 2 == 0 { 0 } else { 5 };
        let script = format!("echo {i} >> runs.txt; sleep 0.05");
        let cmd = gw
            .run("demo", json!({"kind": "shell", "script": script, "priority": priority}))
            .await;
        assert_eq!(cmd["state"], "queued", "{cmd}");
        let id = cmd["id"].as_str().unwrap().to_owned();
        if priority == 0 { low.push(id) } else { high.push(id) }
    }
    std::fs::write(gws[0].workspaces().join("demo/release"), "").unwrap();
    for (i, id) in gates.iter().chain(&high).chain(&low).enumerate() {
        let done = gws[i % 3].wait_done(id).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    sampling.store(false, Ordering::SeqCst);
    sampler.await.unwrap();
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "{} commands ran at once",
        most.load(Ordering::SeqCst)
    );
    assert_eq!(most.load(Ordering::SeqCst), 2, "the sampler saw both slots in use");

    // Claimed in priority order, FIFO within a priority, across the replicas that claimed them.
    let order: Vec<String> = started_order(&pool)
        .await
        .into_iter()
        .filter(|id| !gates.contains(id))
        .collect();
    let expected: Vec<String> = high.iter().chain(&low).cloned().collect();
    assert_eq!(order, expected);
    let ends: Vec<(String, i64)> = sqlx::query(
        "SELECT target, COUNT(*) AS n FROM audit_events WHERE action = 'command.succeeded' GROUP BY target",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("target"), r.get("n")))
    .collect();
    assert_eq!(ends.len(), 30, "{ends:?}");
    assert!(
        ends.iter().all(|(_, n)| *n == 1),
        "every command ends exactly once: {ends:?}"
    );
    let runs = std::fs::read_to_string(gws[0].workspaces().join("demo/runs.txt")).unwrap();
    let mut ran: Vec<usize> = runs.lines().map(|l| l.parse().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(ran, (0..28).collect::<Vec<_>>(), "every command ran exactly once");
    let claimed_by: std::collections::HashSet<String> = sqlx::query("SELECT DISTINCT owner FROM commands")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("owner"))
        .collect();
    assert!(claimed_by.len() >= 2, "claims spread over the replicas: {claimed_by:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_another_replica_follows_live_and_resumes_on_a_third() {
    // Streams re-read the store on their own only every 10 min: live output must come by notice.
    let gws = three("sse_recheck_secs = 600\n").await;
    // The command waits after line 30 until `more` exists: lines 1-30 can reach the other
    // replica only by notice, not by the replay at the command's end.
    let script = "echo start; while [ ! -e go ]; do sleep 0.05; done; \
                  for i in $(seq 1 30); do echo line$i; sleep 0.01; done; \
                  while [ ! -e more ]; do sleep 0.05; done; \
                  for i in $(seq 31 60); do echo line$i; done";
    let id = gws[0].shell("demo", script).await;
    let (b, c) = others(owner_of(&gws, &id).await);
    let url = |gw: &Gateway| format!("{}/v1/commands/{id}/stream", gw.url);
    let mut live = SseStream::open(&url(&gws[b]), &gws[b].admin_token, None).await;
    let mut seen = vec![live.next().await.expect("the first line")];
    assert_eq!(seen[0].data["text"], "start\n");
    std::fs::write(gws[0].workspaces().join("demo/go"), "").unwrap();
    // Heartbeat comments keep an idle stream open: a stream that never gets its output would
    // wait forever without this bound.
    tokio::time::timeout(DEADLINE, async {
        while !output_text(&seen).contains("line30\n") {
            seen.push(live.next().await.expect("live output from the owner"));
        }
    })
    .await
    .expect("live output arrives by notice");
    drop(live);
    std::fs::write(gws[0].workspaces().join("demo/more"), "").unwrap();
    let last_id = seen.last().unwrap().id.clone().expect("an event id");
    let resumed = SseStream::open(&url(&gws[c]), &gws[c].admin_token, Some(&last_id)).await;
    let rest = tokio::time::timeout(DEADLINE, resumed.collect())
        .await
        .expect("the rest and the end arrive by notice");
    let end = rest.last().expect("an end event");
    assert_eq!((end.event.as_str(), &end.data["state"]), ("end", &json!("succeeded")));
    let all: Vec<_> = seen.into_iter().chain(rest).collect();
    let expected: String = std::iter::once("start\n".to_owned())
        .chain((1..=60).map(|i| format!("line{i}\n")))
        .collect();
    assert_eq!(output_text(&all), expected, "every line once, in order");
    let seqs: Vec<i64> = all.iter().filter_map(|e| e.id.as_deref()?.parse().ok()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no duplicate: {seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_any_replica_kills_the_process_group_on_its_owner() {
    let gws = three("").await;
    let demo = gws[0].workspaces().join("demo");
    let id = gws[0].shell("demo", "sleep 300 & echo $! > cancel.pid; wait").await;
    let (b, _) = others(owner_of(&gws, &id).await);
    let pid = read_pid(&demo.join("cancel.pid")).await;
    let (status, cmd) = gws[b]
        .call(
            Method::POST,
            &format!("/v1/commands/{id}/cancel"),
            &gws[b].admin_token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmd}");
    assert_eq!(
        cmd["state"], "cancelled",
        "the cancel answers once the owner stopped it: {cmd}"
    );
    wait_until(DEADLINE, || async { !process_alive(pid) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_on_one_replica_ends_its_streams_on_the_others() {
    // Streams re-check their key on their own only every 10 min: the revocation must come by notice.
    let gws = three("sse_recheck_secs = 600\n").await;
    let (key_id, token) = gws[0]
        .key(json!({"name": "watcher", "scopes": ["commands:read"]}))
        .await;
    let id = gws[0].shell("demo", "echo waiting; sleep 300").await;
    let mut streams = Vec::new();
    for gw in &gws[1..] {
        let mut stream = SseStream::open(&format!("{}/v1/commands/{id}/stream", gw.url), &token, None).await;
        assert_eq!(stream.next().await.expect("output").data["text"], "waiting\n");
        streams.push(stream);
    }
    let (status, _) = gws[0]
        .call(Method::DELETE, &format!("/v1/keys/{key_id}"), &gws[0].admin_token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for mut stream in streams {
        let last = tokio::time::timeout(DEADLINE, async move {
            let mut last = None;
            while let Some(event) = stream.next().await {
                last = Some(event);
            }
            last
        })
        .await
        .expect("the stream ended on the revocation notice");
        let last = last.expect("an event saying why");
        assert_eq!(
            (last.event.as_str(), &last.data["code"]),
            ("error", &json!("unauthorized"))
        );
    }
    gws[0]
        .call(
            Method::POST,
            &format!("/v1/commands/{id}/cancel"),
            &gws[0].admin_token,
            None,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_reconciled_by_the_others_and_touches_nothing_on_return() {
    let mut gws = three("[projects.demo]\nmax_concurrent_commands = 1\n").await;
    let demo = gws[0].workspaces().join("demo");
    let doomed = gws[0]
        .shell("demo", "echo before; sleep 300 & echo $! > doomed.pid; wait")
        .await;
    let dead = owner_of(&gws, &doomed).await;
    let (b, c) = others(dead);
    let doomed_pid = read_pid(&demo.join("doomed.pid")).await;
    let dead_id = gws[dead].replica_id().await;
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(
            gws[[b, c][i % 2]]
                .shell("demo", &format!("echo {i} >> after.txt"))
                .await,
        );
    }
    let url = format!("{}/v1/commands/{doomed}/stream", gws[b].url);
    let mut stream = SseStream::open(&url, &gws[b].admin_token, None).await;
    assert_eq!(stream.next().await.expect("output").data["text"], "before\n");

    gws[dead].kill();
    wait_until(DEADLINE, || async {
        for i in [b, c] {
            let (status, cmd) = gws[i].get(&format!("/v1/commands/{doomed}")).await;
            assert_eq!(status, StatusCode::OK, "the others keep serving: {cmd}");
        }
        gws[b].command(&doomed).await["state"] == "interrupted"
    })
    .await;
    let rest = stream.collect().await;
    let end = rest.last().expect("the stream ends");
    assert_eq!((end.event.as_str(), &end.data["state"]), ("end", &json!("interrupted")));
    let reason = gws[c].command(&doomed).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains(&dead_id), "{reason}");
    wait_until(DEADLINE, || async { !process_alive(doomed_pid) }).await;
    for id in &queued {
        let done = gws[b].wait_done(id).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_ne!(done["replica_id"], json!(dead_id), "{done}");
    }

    let survivor = gws[b].shell("demo", "sleep 300 & echo $! > survivor.pid; wait").await;
    gws[c].wait_state(&survivor, "running").await;
    let survivor_pid = read_pid(&demo.join("survivor.pid")).await;
    let survivor_owner = gws[c].command(&survivor).await["replica_id"].clone();
    gws[dead].restart();
    wait_until(DEADLINE, || async {
        send(gws[dead].client.get(format!("{}/ready", gws[dead].url)))
            .await
            .status
            == StatusCode::OK
    })
    .await;
    // Two lease periods (3 s each in tests) and many heartbeats of the restarted replica.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let cmd = gws[dead].command(&survivor).await;
    assert_eq!(
        (&cmd["state"], &cmd["replica_id"]),
        (&json!("running"), &survivor_owner),
        "{cmd}"
    );
    assert!(
        process_alive(survivor_pid),
        "a live replica's process must not be killed"
    );
    let (status, cmd) = gws[dead]
        .call(
            Method::POST,
            &format!("/v1/commands/{survivor}/cancel"),
            &gws[dead].admin_token,
            None,
        )
        .await;
    assert_eq!((status, &cmd["state"]), (StatusCode::OK, &json!("cancelled")), "{cmd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_to_two_replicas_at_once_creates_one_command() {
    let gws = three("").await;
    let pool = gws[0].postgres().await;
    for attempt in 0..10 {
        let key = format!("same-{attempt}");
        let post = |gw: &Gateway| {
            gw.request(Method::POST, "/v1/projects/demo/commands")
                .bearer_auth(&gw.admin_token)
                .header("idempotency-key", key.clone())
                .json(&json!({"kind": "shell", "script": "true"}))
        };
        let (a, b) = tokio::join!(send(post(&gws[1])), send(post(&gws[2])));
        for reply in [&a, &b] {
            assert!(reply.status.is_success(), "{}: {}", reply.status, reply.body);
        }
        assert_eq!(a.body["id"], b.body["id"], "{} / {}", a.body, b.body);
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE idempotency_key = $1")
            .bind(&key)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 1);
    }
}

/// A replica paused past its lease (as a long GC pause, a frozen VM or a partition would) is
/// reconciled by its peers; when it wakes up it notices that its lease is gone, stops what it
/// still ran, and serves again under a new replica id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_past_its_lease_stops_what_it_ran_when_it_wakes() {
    let gws = three("").await;
    let demo = gws[0].workspaces().join("demo");
    let id = gws[0].shell("demo", "sleep 300 & echo $! > paused.pid; wait").await;
    let paused = owner_of(&gws, &id).await;
    let (b, _) = others(paused);
    let pid = read_pid(&demo.join("paused.pid")).await;
    let old_id = gws[paused].replica_id().await;
    let pool = gws[0].postgres().await;
    wait_until(DEADLINE, || async {
        let row = sqlx::query("SELECT pgid FROM commands WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
        row.get::<Option<i64>, _>("pgid").is_some()
    })
    .await;
    // Recorded as running on another host: the peers cannot kill it, only its own replica can.
    sqlx::query("UPDATE commands SET runner = 'local:another-host:another-boot' WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let signal = |sig: &str| {
        let gateway = gws[paused].pid().expect("running").to_string();
        assert!(
            std::process::Command::new("kill")
                .args([sig, &gateway])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    gws[b].wait_state(&id, "interrupted").await;
    assert!(
        process_alive(pid),
        "no peer can kill a process recorded on another host"
    );
    signal("-CONT");
    wait_until(DEADLINE, || async { !process_alive(pid) }).await;
    wait_until(DEADLINE, || async {
        let reply = send(gws[paused].client.get(format!("{}/ready", gws[paused].url))).await;
        reply.status == StatusCode::OK && reply.body["replica_id"] != json!(old_id)
    })
    .await;
    let cmd = gws[paused].command(&id).await;
    assert_eq!(cmd["state"], "interrupted", "{cmd}");
}
