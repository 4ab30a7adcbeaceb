//! The Kubernetes backend against the in-process fake API server (real kube-rs client, real
//! watch streams, real exec websockets): discovery from pod labels and the projects ConfigMap,
//! pods deleted mid-command, API-server outages and the circuit breaker, the v4 exec protocol,
//! and commands left running by a crashed gateway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fake_apiserver::{CpuHog, Options};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::backends::{Backend, NAMESPACE, PREFIX, Site, wait_for_status, workspace_pod};
use crate::common::sse::{SseStream, output_text};
use crate::common::{process_alive, read_pid, wait_until};

const LIMIT: Duration = Duration::from_secs(10);

async fn project_names(site: &Site) -> Vec<String> {
    let (status, list) = site.gw.get("/v1/projects").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let projects = list["projects"].as_array().unwrap();
    projects
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_listed(site: &Site, name: &str, listed: bool) -> Duration {
    let started = Instant::now();
    wait_until(LIMIT, || async {
        project_names(site).await.contains(&name.to_owned()) == listed
    })
    .await;
    started.elapsed()
}

async fn output_of(site: &Site, id: &str) -> String {
    let url = format!("{}/v1/commands/{id}/stream", site.gw.url);
    output_text(&SseStream::open(&url, &site.gw.admin_token, None).await.collect().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_pods_come_and_go_with_the_watch() {
    let site = Site::start(Backend::Kubernetes, "").await;
    let cluster = site.cluster();
    let dir = site.pod_root().join("api");
    std::fs::create_dir_all(&dir).unwrap();
    cluster.create_pod(NAMESPACE, workspace_pod("api-0", "api", &dir));
    // No polling runs for this backend: the project can only appear through the watch.
    let appeared = wait_listed(&site, "api", true).await;

    let mut unlabelled = workspace_pod("db-0", "db", &dir);
    unlabelled.labels.insert(format!("{PREFIX}/project"), "false".into());
    cluster.create_pod(NAMESPACE, unlabelled);
    cluster.create_pod("elsewhere", workspace_pod("other-0", "other", &dir));

    let mut relabelled = workspace_pod("api-0", "api", &dir);
    relabelled.labels.insert(format!("{PREFIX}/name"), "api-v2".into());
    cluster.update_pod(NAMESPACE, relabelled);
    wait_listed(&site, "api-v2", true).await;
    assert_eq!(
        project_names(&site).await,
        ["api-v2"],
        "only labelled pods of the namespace"
    );

    cluster.delete_pod(NAMESPACE, "api-0");
    let vanished = wait_listed(&site, "api-v2", false).await;
    eprintln!("listed after {appeared:?}, gone after {vanished:?}");
    let (status, body) = site.gw.get("/v1/projects/api-v2").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_entries_add_projects_and_override_labels() {
    let site = Site::start(Backend::Kubernetes, "").await;
    let cluster = site.cluster();
    let labelled_dir = site.pod_root().join("labelled");
    let entry_dir = site.pod_root().join("from-entry");
    for dir in [&labelled_dir, &entry_dir] {
        std::fs::create_dir_all(dir).unwrap();
    }
    cluster.create_pod(NAMESPACE, workspace_pod("web-0", "web", &labelled_dir));
    let mut plain = workspace_pod("tools-0", "unused", &entry_dir);
    plain.labels.clear();
    cluster.create_pod(NAMESPACE, plain);
    wait_listed(&site, "web", true).await;

    let entry = |pod: &str, dir: &std::path::Path, description: &str| {
        format!(
            "pod: {pod}\ncontainer: main\nworkspace: {}\ndescription: {description}\n",
            dir.display()
        )
    };
    let data = BTreeMap::from([
        ("web".to_owned(), entry("web-0", &entry_dir, "from the ConfigMap")),
        ("tools".to_owned(), entry("tools-0", &entry_dir, "an unlabelled pod")),
        ("ghost".to_owned(), entry("no-such-pod", &entry_dir, "missing")),
        ("broken".to_owned(), "pod: [unclosed".to_owned()),
        ("typo".to_owned(), "pod: tools-0\nworkspce: /x\n".to_owned()),
    ]);
    cluster.set_config_map(NAMESPACE, "rdev-projects", data);
    wait_listed(&site, "tools", true).await;
    assert_eq!(project_names(&site).await, ["tools", "web"]);
    let (_, web) = site.gw.get("/v1/projects/web").await;
    assert_eq!(web["description"], "from the ConfigMap", "{web}");
    let id = site.gw.shell("web", "pwd").await;
    assert_eq!(site.gw.wait_done(&id).await["state"], "succeeded");
    assert_eq!(output_of(&site, &id).await.trim_end(), entry_dir.to_str().unwrap());

    cluster.delete_config_map(NAMESPACE, "rdev-projects");
    wait_listed(&site, "tools", false).await;
    let (_, web) = site.gw.get("/v1/projects/web").await;
    assert_eq!(web["description"], "web in a pod", "labels apply again: {web}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_mid_command_fails_it_with_the_reason() {
    let site = Site::start(Backend::Kubernetes, "").await;
    let workspace = site.project("web").await;
    let id = site
        .gw
        .shell("web", "echo $$ > main.pid; echo started; sleep 300")
        .await;
    let pid = read_pid(&workspace.join("main.pid")).await;
    site.gw.wait_state(&id, "running").await;
    site.cluster().delete_pod(NAMESPACE, "web-0");
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("pod web-0 was deleted"), "{reason}");
    assert!(!process_alive(pid));
    assert_eq!(output_of(&site, &id).await, "started\n");
    wait_listed(&site, "web", false).await;
}

async fn ready(site: &Site) -> (StatusCode, Value) {
    let response = site.gw.request(Method::GET, "/ready").send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_opens_the_breaker_and_recovery_closes_it() {
    let site = Site::start(Backend::Kubernetes, "").await;
    site.project("web").await;
    let (status, body) = ready(&site).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kubernetes"]["breaker"]["state"], "closed", "{body}");
    assert_eq!(body["kubernetes"]["namespace"], NAMESPACE);

    site.cluster().set_down(true);
    wait_until(LIMIT, || async {
        ready(&site).await.1["kubernetes"]["breaker"]["state"] == "open"
    })
    .await;
    let (status, body) = ready(&site).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["backend"]["ok"], false, "{body}");
    assert!(
        body["backend"]["error"]
            .as_str()
            .unwrap()
            .contains("circuit breaker open"),
        "{body}"
    );
    let (status, refused) = site
        .gw
        .post("/v1/projects/web/commands", json!({"kind": "shell", "script": "true"}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(refused["error"]["code"], "backend_unavailable");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker open"),
        "{refused}"
    );
    let (status, items) = site.gw.get("/v1/projects/web/claude/commands").await;
    assert_eq!(
        (status, &items["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("backend_unavailable"))
    );
    let metrics = site
        .gw
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rdev_kube_breaker_state 2"), "{metrics}");
    assert!(
        project_names(&site).await.contains(&"web".to_owned()),
        "the last good list stays"
    );

    site.cluster().set_down(false);
    wait_for_status(&site.gw, "/ready", StatusCode::OK).await;
    assert_eq!(ready(&site).await.1["kubernetes"]["breaker"]["state"], "closed");
    let id = site.gw.shell("web", "echo back").await;
    assert_eq!(site.gw.wait_done(&id).await["state"], "succeeded");
    assert_eq!(output_of(&site, &id).await, "back\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v4_channel_protocol_works_too() {
    let options = Options {
        exec_protocols: vec!["v4.channel.k8s.io"],
    };
    let site = Site::start_with(Backend::Kubernetes, "", options).await;
    site.project("web").await;
    let id = site.gw.shell("web", "echo out; echo err >&2; exit 7").await;
    let done = site.gw.wait_done(&id).await;
    assert_eq!(
        (done["state"].as_str(), done["exit_code"].as_i64()),
        (Some("failed"), Some(7)),
        "{done}"
    );
    let output = output_of(&site, &id).await;
    assert!(
        ["out\nerr\n", "err\nout\n"].contains(&output.as_str()),
        "two streams, any order: {output:?}"
    );
    let gw = &site.gw;
    let path = "/v1/projects/web/claude/commands/deploy";
    let content = "x".repeat(200_000);
    let (status, body) = gw
        .call(Method::PUT, path, &gw.admin_token, Some(json!({"content": content})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(gw.get(path).await.1["content"], content.as_str());
    let protocols: Vec<String> = site.cluster().execs().into_iter().map(|e| e.protocol).collect();
    assert!(
        !protocols.is_empty() && protocols.iter().all(|p| p == "v4.channel.k8s.io"),
        "{protocols:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_kills_what_a_crashed_one_left_in_pods() {
    let mut site = Site::start(Backend::Kubernetes, "").await;
    let workspace = site.project("web").await;
    let id = site.gw.shell("web", "echo $$ > main.pid; sleep 300").await;
    let pid = read_pid(&workspace.join("main.pid")).await;
    site.gw.wait_state(&id, "running").await;
    site.gw.wait_process_group_recorded(&id).await;
    site.gw.kill();
    assert!(
        process_alive(pid),
        "closing the exec stream does not stop the remote process"
    );
    site.gw.restart();
    site.wait_processes_gone("web", pid).await;
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "interrupted", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_kills_a_pod_command_whose_start_was_never_recorded() {
    let mut site = Site::start(Backend::Kubernetes, "").await;
    let workspace = site.project("web").await;
    let id = site.gw.shell("web", "echo $$ > main.pid; sleep 300").await;
    let pid = read_pid(&workspace.join("main.pid")).await;
    site.gw.wait_process_group_recorded(&id).await;
    site.gw.kill();
    site.gw.forget_process_group(&id).await;
    assert!(process_alive(pid));
    site.gw.restart();
    site.wait_processes_gone("web", pid).await;
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "interrupted", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_in_the_chosen_container() {
    let site = Site::start(Backend::Kubernetes, "").await;
    let cluster = site.cluster();
    let dir = site.pod_root().join("multi");
    std::fs::create_dir_all(&dir).unwrap();
    let mut declared = workspace_pod("declared-0", "declared", &dir);
    declared.containers = vec!["sidecar".into(), "main".into()];
    declared
        .annotations
        .insert("kubectl.kubernetes.io/default-container".into(), "main".into());
    let mut chosen = declared.clone();
    chosen.name = "chosen-0".into();
    chosen.labels.insert(format!("{PREFIX}/name"), "chosen".into());
    chosen
        .annotations
        .insert(format!("{PREFIX}/container"), "sidecar".into());
    cluster.create_pod(NAMESPACE, declared);
    cluster.create_pod(NAMESPACE, chosen);
    for (project, pod, container) in [("declared", "declared-0", "main"), ("chosen", "chosen-0", "sidecar")] {
        wait_listed(&site, project, true).await;
        let id = site.gw.shell(project, "true").await;
        assert_eq!(site.gw.wait_done(&id).await["state"], "succeeded");
        let execs = cluster.execs();
        let last = execs.iter().rev().find(|e| e.pod == pod).unwrap();
        assert_eq!(last.container, container, "{project}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_kubeconfig_stops_startup_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rdev.toml");
    let missing = dir.path().join("no-such-kubeconfig");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins = []\nbackend.kind = \"kubernetes\"\n\
         [backend.kubernetes]\nkubeconfig = {missing:?}\n",
        dir.path().join("data")
    );
    std::fs::write(&config, text).unwrap();
    let output = std::process::Command::new(crate::common::binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-kubeconfig"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_label_prefix_applies_to_inventory_and_default_discovery() {
    let cluster = fake_apiserver::FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::backends::kubernetes_config(&cluster, dir.path()) + "label_prefix = \"example.com\"\n";
    let gw = crate::common::Gateway::start_with_plugins(crate::common::Db::Sqlite, &config).await;
    let workspace = dir.path().join("site");
    std::fs::create_dir_all(&workspace).unwrap();
    let pod = fake_apiserver::PodSpec::new("site-0")
        .label("example.com/project", "true")
        .label("example.com/name", "site")
        .annotation("example.com/workspace", workspace.to_str().unwrap())
        .container("main");
    let ignored = workspace_pod("old-0", "old", &workspace);
    cluster.create_pod(NAMESPACE, pod);
    cluster.create_pod(NAMESPACE, ignored);
    gw.wait_for_project("site").await;
    let (_, list) = gw.get("/v1/projects").await;
    assert_eq!(list["projects"].as_array().unwrap().len(), 1, "{list}");
}

/// Item operations whose script exits without reading stdin used to hang to the API timeout
/// under load (the status frame was lost to a connection reset): each round must answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_items_answer_every_time_on_a_loaded_machine() {
    let site = Site::start(Backend::Kubernetes, "").await;
    let workspace = site.project("web").await;
    let outside = site.gw.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let _hog = CpuHog::start();
    let gw = &site.gw;
    let put = |path: &'static str| gw.call(Method::PUT, path, &gw.admin_token, Some(json!({"content": "x"})));
    for round in 0..25 {
        std::os::unix::fs::symlink(&outside, workspace.join(".claude")).unwrap();
        let (status, refused) = put("/v1/projects/web/claude/commands/evil").await;
        assert_eq!(status, StatusCode::CONFLICT, "round {round}: {refused}");
        std::fs::remove_file(workspace.join(".claude")).unwrap();
        let (status, written) = put("/v1/projects/web/claude/commands/fine").await;
        assert!(status.is_success(), "round {round}: {written}");
        let (status, read) = gw.get("/v1/projects/web/claude/commands/fine").await;
        assert_eq!(status, StatusCode::OK, "round {round}: {read}");
        std::fs::remove_dir_all(workspace.join(".claude")).unwrap();
    }
}
