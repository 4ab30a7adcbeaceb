//! The plugin tutorial (`docs/plugin-tutorial`, walked through in `docs/plugins.md`): it builds
//! as a component, passes its fixtures through `rdev plugins test`, and does in a gateway what the
//! guide says it does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::plugins::sanitizer;
use crate::common::{Db, Gateway, binary};

fn tutorial() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-tutorial")
}

/// The tutorial's component, built once per test run (release, wasm32-wasip2), as the guide does.
fn component() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(build)
}

fn build() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::env::temp_dir().join("rdev-e2e"), PathBuf::from)
        .join("wasm/tutorial");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(tutorial().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // What cargo set for this test run is about the host build; none of it may leak in.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
            command.env_remove(key.as_ref());
        }
    }
    let output = command.output().expect("cargo can be started");
    assert!(
        output.status.success(),
        "building the tutorial plugin failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join("wasm32-wasip2/release/no_force_push.wasm")
}

#[test]
fn the_tutorial_plugin_passes_its_fixtures_as_a_component() {
    let fixtures = tutorial().join("fixtures.json");
    let report =
        rdev_plugin_sdk::testing::run_component_with(Path::new(binary()), component(), fixtures.to_str().unwrap());
    report.assert_passed();
    assert!(report.cases.len() > 10, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_the_tutorial_plugin_refuses_force_pushes_to_main_only() {
    let wasm = tokio::task::spawn_blocking(component).await.unwrap();
    let config = "config = { protected_branches = [\"main\"] }\norder = 10";
    let gw = Gateway::start_with_plugins(Db::Sqlite, &sanitizer("no-force-push", wasm, config)).await;
    for forced in [
        json!({"kind": "git", "args": ["push", "--force", "origin", "main"]}),
        json!({"kind": "shell", "script": "git status && git push -f origin main"}),
    ] {
        let (status, body) = gw.post("/v1/projects/demo/commands", forced).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "denied_by_policy", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`no-force-push`") && message.contains("`main`"),
            "{body}"
        );
        assert_eq!(body["error"]["decisions"][0]["verdict"], "deny", "{body}");
    }
    // The demo project has no remote: these pushes fail when they run. Being accepted is the point.
    for allowed in [
        json!({"kind": "git", "args": ["push", "origin", "main"]}),
        json!({"kind": "git", "args": ["push", "--force", "origin", "feature"]}),
    ] {
        assert_eq!(gw.run_status("demo", allowed).await, StatusCode::ACCEPTED);
    }
    let accepted = gw.audit("action=command.accepted").await;
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert_eq!(accepted[0]["detail"]["decisions"][0]["plugin"], "no-force-push");
    assert_eq!(accepted[0]["detail"]["decisions"][0]["verdict"], "allow");
    let (_, list) = gw.get("/v1/plugins").await;
    assert_eq!(list["plugins"][0]["name"], "no-force-push", "{list}");
    assert_eq!(list["plugins"][0]["state"], "active", "{list}");
    assert_eq!(list["plugins"][0]["denials"], 2, "{list}");
}
