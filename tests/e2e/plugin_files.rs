//! What sits at a plugin's path is not trusted: a FIFO, a link to a device, an oversize file,
//! a directory or a link out of the plugin directory are refused with a clear error while the
//! serving version keeps serving, reloads keep answering and memory stays flat; putting the good
//! file back makes the plugin active again.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::Gateway;
use crate::common::plugins::test_plugin;
use crate::plugins::{plugins_dir, probe_reason, status_of, with_probe};

/// How long a reload may take on a loaded machine; a blocked one never answers.
const RELOAD_BOUND: Duration = Duration::from_secs(30);
/// Growth of the gateway's resident memory that counts as "not flat".
const RSS_BOUND_KB: u64 = 200 * 1024;

fn rss_kb(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid().unwrap())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn reload(gw: &Gateway) -> Value {
    let reply = gw
        .request(reqwest::Method::POST, "/v1/plugins/reload")
        .bearer_auth(&gw.admin_token)
        .timeout(RELOAD_BOUND)
        .send()
        .await
        .expect("the reload answers");
    assert_eq!(reply.status(), StatusCode::OK);
    reply.json().await.unwrap()
}

async fn probe_status(gw: &Gateway) -> Value {
    let (status, list) = gw.get("/v1/plugins").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    status_of(&list, "probe").clone()
}

/// Puts something at a plugin file's path.
type Plant = fn(&Path);

/// Replaces `probe.wasm` with what `plant` puts there.
fn replace(file: &Path, plant: impl FnOnce(&Path)) {
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_dir(file);
    plant(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_in_place_of_a_plugin_are_refused_and_memory_stays_flat() {
    let gw = with_probe("probe_version_a", "").await;
    let file = plugins_dir(&gw).join("probe.wasm");
    let before = rss_kb(&gw);
    let cases: [(&str, Plant, &str); 4] = [
        (
            "a FIFO",
            |f| {
                let status = std::process::Command::new("mkfifo").arg(f).status().unwrap();
                assert!(status.success());
            },
            "is a FIFO, not a regular file",
        ),
        (
            "a directory",
            |f| std::fs::create_dir(f).unwrap(),
            "is a directory, not a regular file",
        ),
        (
            "an oversize file",
            |f| std::fs::File::create(f).unwrap().set_len(40 << 20).unwrap(),
            "larger than plugin_runtime.max_file_bytes",
        ),
        (
            "a link to /dev/zero",
            |f| std::os::unix::fs::symlink("/dev/zero", f).unwrap(),
            "is a link to /dev/zero",
        ),
    ];
    for (what, plant, expected) in cases {
        replace(&file, plant);
        let report = reload(&gw).await;
        let error = report["failed"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{what}: {report}");
        let probe = probe_status(&gw).await;
        assert_eq!(probe["state"], "degraded", "{what}: {probe}");
        assert!(
            probe["last_error"].as_str().unwrap().contains(expected),
            "{what}: {probe}"
        );
        assert!(
            probe_reason(&gw, "echo probe").await.unwrap().contains("version a"),
            "{what}"
        );
        let grown = rss_kb(&gw).saturating_sub(before);
        assert!(grown < RSS_BOUND_KB, "{what}: the gateway grew by {grown} kB");
    }

    replace(&file, |f| {
        std::fs::copy(test_plugin("probe_version_a"), f).unwrap();
    });
    let report = reload(&gw).await;
    assert_eq!(report["unchanged"][0], "probe", "{report}");
    let probe = probe_status(&gw).await;
    assert_eq!(probe["state"], "active", "{probe}");
    assert!(probe["last_error"].is_null(), "{probe}");
}

/// The decision: a plugin file may be a link, but only to a file inside its own directory (a
/// mounted ConfigMap is made of such links); a link out of it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_out_of_the_plugin_directory_is_refused() {
    let gw = with_probe("probe_version_a", "").await;
    let file = plugins_dir(&gw).join("probe.wasm");
    replace(&file, |f| {
        std::os::unix::fs::symlink(test_plugin("probe_version_b"), f).unwrap()
    });
    let report = reload(&gw).await;
    let error = report["failed"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("outside"), "{report}");
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version a"));

    let inside = plugins_dir(&gw).join("versions");
    std::fs::create_dir(&inside).unwrap();
    std::fs::copy(test_plugin("probe_version_b"), inside.join("b.wasm")).unwrap();
    replace(&file, |f| std::os::unix::fs::symlink("versions/b.wasm", f).unwrap());
    // The watcher may have loaded it first: then this reload finds it unchanged.
    let report = reload(&gw).await;
    assert!(report["failed"].as_array().unwrap().is_empty(), "{report}");
    assert!(probe_reason(&gw, "echo probe").await.unwrap().contains("version b"));
}

/// Observed: after a broken file was replaced by the serving version's own bytes, the plugin
/// stayed `degraded` with the stale error, because an unchanged file was not an attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_file_makes_the_plugin_active_again() {
    let gw = with_probe("probe_version_a", "").await;
    let file = plugins_dir(&gw).join("probe.wasm");
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, &good[..good.len() / 3]).unwrap();
    reload(&gw).await;
    assert_eq!(probe_status(&gw).await["state"], "degraded");

    std::fs::write(&file, &good).unwrap();
    let report = reload(&gw).await;
    assert_eq!(report["unchanged"][0], "probe", "{report}");
    let probe = probe_status(&gw).await;
    assert_eq!(probe["state"], "active", "{probe}");
    assert!(probe["last_error"].is_null(), "{probe}");
    let restored = gw.audit("action=plugin.restored&target=probe").await;
    assert!(!restored.is_empty(), "the recovery is on the audit trail");
}
