//! Signed plugins: with trusted keys configured, a component loads only with a valid signature by
//! one of them (made by `rdev plugins sign`); anything else is refused and the last good version
//! keeps serving.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::plugins::{sanitizer, test_plugin};
use crate::common::{Db, Gateway, binary};
use crate::plugins::{plugins_dir, probe_reason};

fn rdev(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rdev {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(name);
    let public = rdev(&["plugins", "keygen", "--out", key.to_str().unwrap()]);
    (key.display().to_string(), public)
}

async fn reload(gw: &Gateway) -> serde_json::Value {
    let (status, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_components_signed_by_a_trusted_key_load() {
    let keys = tempfile::tempdir().unwrap();
    let (trusted, public) = keygen(keys.path(), "trusted.key");
    let (other, _) = keygen(keys.path(), "other.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&trusted).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the private key is readable by its owner only");
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("probe.wasm");
    std::fs::copy(test_plugin("probe_version_a"), &file).unwrap();
    let sign = |key: &str| rdev(&["plugins", "sign", file.to_str().unwrap(), "--key", key]);
    assert_eq!(sign(&trusted), public, "sign prints the key it verifies with");
    let config = format!(
        "plugins_dir = {:?}\nplugins_debounce_ms = 50\n[plugin_trust]\nkeys = [{public:?}]\n{}",
        dir.display().to_string(),
        sanitizer("probe", Path::new("probe.wasm"), "")
    );
    let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
    assert_eq!(plugins_dir(&gw), dir);
    let serving = || async { probe_reason(&gw, "echo probe").await.unwrap_or_default() };
    assert!(serving().await.contains("version a"), "a signed component loads");

    std::fs::copy(test_plugin("probe_version_b"), &file).unwrap();
    let report = reload(&gw).await;
    assert!(report["failed"].to_string().contains("no trusted key made"), "{report}");
    std::fs::remove_file(dir.join("probe.wasm.sig")).unwrap();
    let report = reload(&gw).await;
    assert!(report["failed"].to_string().contains("is not signed"), "{report}");
    sign(&other);
    let report = reload(&gw).await;
    assert!(report["failed"].to_string().contains("no trusted key made"), "{report}");
    assert!(serving().await.contains("version a"), "the old version keeps serving");

    sign(&trusted);
    // The file watcher may load it first; either way it is what serves after the reload.
    let report = reload(&gw).await;
    assert!(super::swapped_in(&report), "{report}");
    assert!(serving().await.contains("version b"));
}
