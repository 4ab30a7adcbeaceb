//! The Kubernetes backend across a network partition: the fake API server behind a proxy that
//! stops forwarding in both directions without closing anything. A running command ends within
//! the exec liveness bound with a reason that says the connection was lost; a cancel says
//! whether its kill was confirmed; once the path heals the remote process is killed and the
//! record says so; `/ready` answers within its own deadline throughout.

use std::time::{Duration, Instant};

use fake_apiserver::BlackHoleProxy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::backends::Site;
use crate::common::{process_alive, read_pid, wait_until};

/// A short liveness bound and probe deadline, far below the API timeout (20 s) and the
/// commands' own timeout (600 s), so that which one ended things is plain.
const KEYS: &str = "exec_liveness_secs = 3\nprobe_timeout_ms = 1000\n";
/// `/ready` must answer within its probe deadline; this leaves room for a loaded machine while
/// staying well below the API timeout it used to wait.
const READY_BOUND: Duration = Duration::from_secs(8);

/// Starts a silent command that records its pid, and waits until it runs.
async fn silent_command(site: &Site) -> (String, i32) {
    let workspace = site.project("web").await;
    let id = site.gw.shell("web", "echo $$ > main.pid; sleep 300").await;
    let pid = read_pid(&workspace.join("main.pid")).await;
    site.gw.wait_state(&id, "running").await;
    (id, pid)
}

/// Calls `/ready`, checking that it answers within its bound.
async fn ready_quickly(site: &Site) -> (StatusCode, Value) {
    let started = Instant::now();
    let response = site.gw.request(Method::GET, "/ready").send().await.unwrap();
    let answer = (response.status(), response.json().await.unwrap());
    let took = started.elapsed();
    assert!(took < READY_BOUND, "/ready took {took:?}: {}", answer.1);
    answer
}

fn reason(command: &Value) -> &str {
    command["reason"].as_str().unwrap_or_default()
}

/// Heals the path and waits for the remote process to be killed and the record to say so.
async fn heal_and_expect_the_kill(site: &Site, proxy: &BlackHoleProxy, id: &str, pid: i32) -> Value {
    proxy.heal();
    wait_until(Duration::from_secs(60), || async { !process_alive(pid) }).await;
    wait_until(Duration::from_secs(30), || async {
        site.cluster().running_processes("web-0").is_empty()
    })
    .await;
    wait_until(Duration::from_secs(30), || async {
        reason(&site.gw.command(id).await).contains("the kill was confirmed")
    })
    .await;
    site.gw.command(id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_ends_a_running_command_as_lost_and_heals_into_its_kill() {
    let (site, proxy) = Site::behind_proxy(KEYS).await;
    let (id, pid) = silent_command(&site).await;
    let (status, body) = ready_quickly(&site).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    proxy.partition();
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    let lost = reason(&done);
    assert!(
        lost.contains("connection to the Kubernetes API server was lost") && lost.contains("unknown"),
        "{done}"
    );
    assert!(lost.contains("kill is not confirmed"), "{done}");
    assert!(process_alive(pid), "nothing reached the pod, so its process still runs");
    for _ in 0..3 {
        let (status, body) = ready_quickly(&site).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let (status, refused) = site
        .gw
        .post("/v1/projects/web/commands", json!({"kind": "shell", "script": "true"}))
        .await;
    if status == StatusCode::ACCEPTED {
        let id = refused["id"].as_str().unwrap();
        assert_eq!(site.gw.wait_done(id).await["state"], "failed");
    } else {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    }

    let healed = heal_and_expect_the_kill(&site, &proxy, &id, pid).await;
    eprintln!("ended as: {}\nafter the heal: {}", reason(&done), reason(&healed));
    assert_eq!(healed["state"], "failed", "the state stays: {healed}");
    assert!(reason(&healed).contains("was lost"), "{healed}");
    wait_until(Duration::from_secs(30), || async {
        ready_quickly(&site).await.0 == StatusCode::OK
    })
    .await;
    let confirmed = site
        .gw
        .audit(&format!("action=command.kill_confirmed&target={id}"))
        .await;
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_partition_says_the_kill_is_not_confirmed_until_it_is() {
    let (site, proxy) = Site::behind_proxy(KEYS).await;
    let (id, pid) = silent_command(&site).await;

    proxy.partition();
    let (status, cancelled) = site.gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert!(reason(&cancelled).contains("kill is not confirmed"), "{cancelled}");
    assert!(process_alive(pid), "the kill never reached the pod");
    let (status, body) = ready_quickly(&site).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    let healed = heal_and_expect_the_kill(&site, &proxy, &id, pid).await;
    eprintln!(
        "cancel answered: {}\nafter the heal: {}",
        reason(&cancelled),
        reason(&healed)
    );
    assert_eq!(healed["state"], "cancelled", "{healed}");
    assert!(!reason(&healed).contains("not confirmed"), "{healed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_a_healthy_path_is_confirmed_at_once() {
    let (site, _proxy) = Site::behind_proxy(KEYS).await;
    let (id, pid) = silent_command(&site).await;
    let (status, cancelled) = site.gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    site.wait_processes_gone("web", pid).await;
    // Confirmed within the cancel, or (on a slow machine) recorded as confirmed soon after.
    wait_until(Duration::from_secs(30), || async {
        let reason = site.gw.command(&id).await["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        reason == "cancelled" || reason.contains("the kill was confirmed")
    })
    .await;
}
