//! The plugin runtime seen from outside: the default plugins, decisions on the record, and hot
//! swaps of plugin files and configuration without a restart.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::plugins::{sanitizer, test_plugin};
use crate::common::{Db, Gateway, wait_until};

/// A gateway with the default plugins, from the default plugin directory.
async fn with_default_plugins() -> Gateway {
    Gateway::start_with_plugins(Db::Sqlite, "").await
}

async fn refusal(gw: &Gateway, body: Value) -> (StatusCode, Value) {
    gw.post("/v1/projects/demo/commands", body).await
}

pub(crate) fn status_of<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_plugin_is_loaded_and_listed_with_its_digest() {
    let gw = with_default_plugins().await;
    let (status, list) = gw.get("/v1/plugins").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<_> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    for name in [
        "shell-sanitizer",
        "request-validator",
        "slack-formatter",
        "discord-formatter",
        "generic-formatter",
        "label-discovery",
    ] {
        assert!(names.contains(&json!(name)), "{name} missing: {list}");
        let plugin = status_of(&list, name);
        assert_eq!(plugin["state"], "active", "{plugin}");
        assert_eq!(plugin["digest"].as_str().unwrap().len(), 64, "{plugin}");
        assert!(plugin["file"].as_str().unwrap().ends_with(".wasm"), "{plugin}");
        // The SDK's export macros declare the plugin crate's name and version.
        assert_eq!(
            plugin["declared"],
            json!({"name": name, "version": "0.1.0"}),
            "{plugin}"
        );
        assert_eq!(plugin["package_version"], "0.1.0", "{plugin}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_sanitizer_refuses_dangerous_commands_and_runs_safe_ones() {
    let gw = with_default_plugins().await;
    let (status, body) = refusal(&gw, json!({"kind": "shell", "script": "ls; rm -rf /"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "denied_by_policy");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`shell-sanitizer`"),
        "{body}"
    );
    let (status, body) = refusal(
        &gw,
        json!({"kind": "git", "args": ["-c", "core.sshCommand=x", "fetch"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for body in [
        json!({"kind": "shell", "script": "git status"}),
        json!({"kind": "git", "args": ["status"]}),
    ] {
        let id = gw.run("demo", body).await["id"].as_str().unwrap().to_owned();
        assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
    }
}

/// The default plugins allocate from a bump arena that never reuses memory within a call: a
/// script of 800 commands must still be judged within the default memory budget. (The deadline
/// is raised: the host's parser runs unoptimized in the test build, on a loaded machine; what
/// is measured here is memory, and speed is the benchmarks' business.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_script_is_judged_within_the_default_memory_budget() {
    let file = crate::common::plugins::default_plugin("shell_sanitizer");
    let gw = Gateway::start_with_plugins(Db::Sqlite, &sanitizer("shell-sanitizer", &file, "deadline_ms = 10000")).await;
    // Builtins only, so that running it spawns nothing.
    let script = "echo ok >> out.txt; ".repeat(800);
    let (status, body) = refusal(&gw, json!({"kind": "shell", "script": script})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = refusal(&gw, json!({"kind": "shell", "script": format!("{script}sudo ls")})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "denied_by_policy", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_validator_refuses_what_the_gateway_alone_would_accept() {
    let gw = with_default_plugins().await;
    let (status, body) = gw
        .post("/v1/keys", json!({"name": "bad/name", "scopes": ["commands:run"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`request-validator`"),
        "{body}"
    );
    assert_eq!(body["error"]["fields"][0]["field"], "name", "{body}");
    let keys = gw.get("/v1/keys").await.1["keys"].as_array().unwrap().len();
    assert_eq!(keys, 1, "only the admin key exists: a refused key is not created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_on_the_command_audit_trail_with_its_version() {
    let gw = with_default_plugins().await;
    let id = gw.shell("demo", "echo audited").await;
    let events = gw.audit(&format!("action=command.accepted&target={id}")).await;
    let decisions = events[0]["detail"]["decisions"].as_array().unwrap().clone();
    let plugins: Vec<_> = decisions.iter().map(|d| d["plugin"].as_str().unwrap()).collect();
    assert_eq!(plugins, ["request-validator", "shell-sanitizer"], "{decisions:?}");
    let (_, list) = gw.get("/v1/plugins").await;
    for d in &decisions {
        let name = d["plugin"].as_str().unwrap();
        assert_eq!(d["digest"], status_of(&list, name)["digest"], "{d}");
        assert!(d["duration_us"].as_u64().is_some(), "{d}");
    }
    let (status, _) = refusal(&gw, json!({"kind": "shell", "script": "sudo ls"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let rejected = gw.audit("action=command.rejected").await;
    let decisions = rejected[0]["detail"]["decisions"].as_array().unwrap();
    assert_eq!(decisions.last().unwrap()["verdict"], "deny", "{decisions:?}");
    assert!(
        decisions.last().unwrap()["reason"].as_str().unwrap().contains("sudo"),
        "{decisions:?}"
    );
}

/// A gateway whose only plugin is `probe`, read from `plugins/probe.wasm` in its directory.
pub(crate) async fn with_probe(version: &str, config: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::copy(test_plugin(version), dir.join("probe.wasm")).unwrap();
    let extra = format!(
        "plugins_dir = {:?}\nplugins_debounce_ms = 50\n{}",
        dir.display().to_string(),
        sanitizer("probe", std::path::Path::new("probe.wasm"), config)
    );
    Gateway::start_with_plugins(Db::Sqlite, &extra).await
}

pub(crate) fn plugins_dir(gw: &Gateway) -> std::path::PathBuf {
    let config = std::fs::read_to_string(gw.config_file()).unwrap();
    let line = config.lines().find(|l| l.starts_with("plugins_dir")).unwrap();
    std::path::PathBuf::from(line.split('"').nth(1).unwrap())
}

pub(crate) async fn probe_reason(gw: &Gateway, script: &str) -> Option<String> {
    let (status, body) = refusal(gw, json!({"kind": "shell", "script": script})).await;
    match status {
        StatusCode::ACCEPTED => None,
        _ => Some(body["error"]["message"].as_str().unwrap().to_owned()),
    }
}

async fn wait_for_reason(gw: &Gateway, script: &str, wanted: &str) {
    wait_until(Duration::from_secs(10), || async {
        probe_reason(gw, script).await.is_some_and(|r| r.contains(wanted))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_file_takes_effect_without_a_restart() {
    let gw = with_probe("probe_version_a", "").await;
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));
    let (_, before) = gw.get("/v1/plugins").await;
    std::fs::copy(test_plugin("probe_version_b"), plugins_dir(&gw).join("probe.wasm")).unwrap();
    wait_for_reason(&gw, "echo probe", "version b").await;
    let (_, after) = gw.get("/v1/plugins").await;
    assert_ne!(
        status_of(&before, "probe")["digest"],
        status_of(&after, "probe")["digest"]
    );
    assert_eq!(status_of(&after, "probe")["state"], "active");
    let loads = gw.audit("action=plugin.loaded&target=probe").await;
    assert_eq!(loads.len(), 2, "{loads:?}");
}

/// Lays out `dir` as the kubelet lays out a mounted ConfigMap: the files are links into
/// `..data`, itself a link to a timestamped directory; an update writes a new directory and
/// renames a new `..data` link over the old one, so no visible file is ever written.
fn config_map_volume(dir: &std::path::Path, generation: &str, version: &str) {
    let payload = dir.join(format!("..{generation}"));
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::copy(test_plugin(version), payload.join("probe.wasm")).unwrap();
    let staged = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{generation}"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
    let visible = dir.join("probe.wasm");
    if std::fs::symlink_metadata(&visible).is_err() {
        std::os::unix::fs::symlink("..data/probe.wasm", visible).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_volume_update_swaps_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    config_map_volume(dir.path(), "2026_11_22_a", "probe_version_a");
    let extra = format!(
        "plugins_dir = {:?}\nplugins_debounce_ms = 50\n{}",
        dir.path().display().to_string(),
        sanitizer("probe", std::path::Path::new("probe.wasm"), "")
    );
    let gw = Gateway::start_with_plugins(Db::Sqlite, &extra).await;
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));
    config_map_volume(dir.path(), "2026_11_22_b", "probe_version_b");
    wait_for_reason(&gw, "echo probe", "version b").await;
    let (_, list) = gw.get("/v1/plugins").await;
    assert_eq!(status_of(&list, "probe")["state"], "active", "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_takes_effect_without_a_restart() {
    let gw = with_probe("probe_version_a", "").await;
    assert!(probe_reason(&gw, "echo zebra").await.is_none());
    let config = std::fs::read_to_string(gw.config_file()).unwrap();
    let changed = config.replace(
        "file = \"probe.wasm\"",
        "file = \"probe.wasm\"\nconfig = { word = \"zebra\" }",
    );
    std::fs::write(gw.config_file(), changed).unwrap();
    wait_for_reason(&gw, "echo zebra", "version a").await;
    assert!(probe_reason(&gw, "echo probe").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_deleted_file_leaves_the_old_version_serving() {
    let gw = with_probe("probe_version_a", "").await;
    let file = plugins_dir(&gw).join("probe.wasm");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let (status, report) = gw.post("/v1/plugins/reload", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["failed"][0]["plugin"], "probe", "{report}");
    let (_, list) = gw.get("/v1/plugins").await;
    let probe = status_of(&list, "probe");
    assert_eq!(probe["state"], "degraded", "{probe}");
    assert!(
        probe["last_error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{probe}"
    );
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));
    std::fs::remove_file(&file).unwrap();
    gw.post("/v1/plugins/reload", json!(null)).await;
    let (_, list) = gw.get("/v1/plugins").await;
    assert!(
        status_of(&list, "probe")["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{list}"
    );
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));
    // The file watcher may reload too, so count kinds of failure rather than events.
    let failures = gw.audit("action=plugin.load_failed&target=probe").await;
    let errors: Vec<_> = failures
        .iter()
        .map(|e| e["detail"]["error"].as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("not a valid WebAssembly component")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("cannot read")), "{errors:?}");
    let metrics = gw
        .client
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rdev_plugin_loads_total{plugin=\"probe\",result=\"failed\"} "))
        .and_then(|n| n.parse::<usize>().ok());
    assert!(counted.is_some_and(|n| n >= 2), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_routes_need_their_scopes() {
    let gw = with_probe("probe_version_a", "").await;
    let (_, token) = gw.key(json!({"name": "runner", "scopes": ["commands:run"]})).await;
    let list = gw.call(reqwest::Method::GET, "/v1/plugins", &token, None).await;
    assert_eq!(list.0, StatusCode::FORBIDDEN, "{}", list.1);
    let reload = gw.call(reqwest::Method::POST, "/v1/plugins/reload", &token, None).await;
    assert_eq!(reload.0, StatusCode::FORBIDDEN, "{}", reload.1);
}

/// Observed: of 64 concurrent POSTs, one was answered 422 `policy_failed` "exceeded its 20 ms
/// deadline": the calls' deadlines ran out while they waited for a CPU, not because a plugin
/// misbehaved. A burst is served, or refused as retryable overload; never as a policy failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_commands_is_never_refused_as_a_policy_failure() {
    let gw = with_default_plugins().await;
    for _ in 0..3 {
        let posts = (0..64).map(|_| {
            let request = gw
                .request(reqwest::Method::POST, "/v1/projects/demo/commands")
                .bearer_auth(&gw.admin_token)
                .json(&json!({"kind": "shell", "script": "echo hi"}));
            crate::common::send(request)
        });
        for reply in futures::future::join_all(posts).await {
            match reply.status {
                StatusCode::ACCEPTED => {}
                StatusCode::SERVICE_UNAVAILABLE => assert!(!reply.header("retry-after").is_empty(), "{reply:?}"),
                other => panic!("a burst was answered {other}: {:?}", reply.body),
            }
        }
    }
}

/// Swapping the plugin file again and again while requests keep coming fails none of them:
/// calls in flight finish on the version they started with, later ones get the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::copy(test_plugin("probe_version_a"), dir.join("probe.wasm")).unwrap();
    let extra = format!(
        "plugins_dir = {:?}\nplugins_debounce_ms = 50\n{}\n[projects.demo]\nmax_concurrent_commands = 1\n",
        dir.display().to_string(),
        sanitizer("probe", std::path::Path::new("probe.wasm"), "")
    );
    let gw = std::sync::Arc::new(Gateway::start_with_plugins(Db::Sqlite, &extra).await);
    // One command holds the project's only slot: the load queues and spawns nothing.
    let (status, body) = refusal(&gw, json!({"kind": "shell", "script": "sleep 600"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (gw, stop) = (gw.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut accepted, mut failures) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match refusal(&gw, json!({"kind": "shell", "script": "echo load"})).await {
                        (StatusCode::ACCEPTED, _) => accepted += 1,
                        (status, body) => failures.push(format!("{status} {body}")),
                    }
                }
                (accepted, failures)
            })
        })
        .collect();
    for version in ["b", "a", "b", "a", "b"] {
        std::fs::copy(test_plugin(&format!("probe_version_{version}")), dir.join("probe.wasm")).unwrap();
        wait_for_reason(&gw, "echo probe", &format!("version {version}")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut accepted = 0;
    for outcome in futures::future::join_all(load).await {
        let (ok, failures) = outcome.unwrap();
        assert!(failures.is_empty(), "requests failed during the swaps: {failures:?}");
        accepted += ok;
    }
    assert!(accepted > 0, "the load ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_default_plugins_load_beside_an_own_one() {
    let dir = tempfile::tempdir().unwrap().keep();
    let out = std::process::Command::new(crate::common::binary())
        .args(["plugins", "defaults", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(written, rdev::plugins::manifest::defaults().len());
    std::fs::copy(test_plugin("probe_version_a"), dir.join("probe.wasm")).unwrap();
    let extra = format!(
        "plugins_dir = {:?}\ndefault_plugins = true\n{}",
        dir.display().to_string(),
        sanitizer("probe", std::path::Path::new("probe.wasm"), "")
    );
    let gw = Gateway::start_with_plugins(Db::Sqlite, &extra).await;
    let (_, list) = gw.get("/v1/plugins").await;
    let plugins = list["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), written + 1, "{list}");
    assert!(plugins.iter().all(|p| p["state"] == "active"), "{list}");
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));
    let refused = probe_reason(&gw, "ls; rm -rf /").await.unwrap();
    assert!(
        refused.contains("shell-sanitizer"),
        "the default sanitizer serves too: {refused}"
    );
}
