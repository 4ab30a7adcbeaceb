//! The plugin tutorial (`docs/plugin-tutorial`, walked through in `docs/plugins.md`): followed in a
//! directory outside the checkout (`rdev plugins new`, the tutorial's files, `rdev plugins
//! build`), it builds as a component, passes its fixtures through `rdev plugins test`, and does in
//! a gateway what the guide says it does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reqwest::StatusCode;
use serde_json::json;

use crate::authoring::run;
use crate::common::plugins::sanitizer;
use crate::common::{Db, Gateway, binary};

fn tutorial() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-tutorial")
}

/// The tutorial's component, built once per test run as the guide builds it: in a directory
/// outside the checkout, from `rdev plugins new`, with the tutorial's files in place of the
/// template's.
fn component() -> &'static Path {
    static WASM: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &WASM.get_or_init(build).1
}

fn build() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    run(
        work.path(),
        &[
            "plugins",
            "new",
            "no-force-push",
            "--world",
            "command-sanitizer",
            "--lang",
            "rust",
        ],
        &[],
    );
    let project = work.path().join("no-force-push");
    std::fs::remove_file(project.join("tests/fixtures.rs")).unwrap();
    for file in [
        "src/lib.rs",
        "src/push.rs",
        "fixtures.json",
        "invariants.json",
        "tests/plugin.rs",
    ] {
        std::fs::copy(tutorial().join(file), project.join(file)).unwrap();
    }
    let settings = std::fs::read_to_string(project.join("rdev-plugin.toml")).unwrap();
    let (head, _) = settings.split_once("[config]").unwrap();
    std::fs::write(
        project.join("rdev-plugin.toml"),
        format!("{head}[config]\nprotected_branches = [\"main\"]\n"),
    )
    .unwrap();
    run(work.path(), &["plugins", "build", "no-force-push"], &[]);
    let wasm = project.join("dist/no-force-push.wasm");
    (work, wasm)
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
