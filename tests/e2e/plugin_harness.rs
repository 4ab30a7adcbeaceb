//! `rdev plugins test`: the default plugins' fixture files pass against their compiled
//! components, a failing case fails the run with a readable report, and `--command` explains a
//! command body through one component as the gateway's chains judge it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::binary;
use crate::common::plugins::default_plugin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn plugin_test(wasm: &Path, fixture: &Path) -> (bool, String) {
    let out = Command::new(binary())
        .args(["plugins", "test"])
        .arg(wasm)
        .arg("--fixture")
        .arg(fixture)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_default_plugin_passes_its_fixtures_as_a_component() {
    let mut ran = 0;
    for entry in std::fs::read_dir(repo().join("plugins")).unwrap() {
        let dir = entry.unwrap().path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(|n| n.replace('-', "_")) else {
            continue;
        };
        if !dir.join("Cargo.toml").exists() || !default_plugin(&name).exists() {
            continue;
        }
        for fixture in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let file = fixture.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("fixtures") && file.ends_with(".json") {
                let (ok, report) = plugin_test(&default_plugin(&name), &fixture);
                assert!(ok, "{}: {report}", fixture.display());
                assert!(report.contains("passed"), "{report}");
                ran += 1;
            }
        }
    }
    assert!(ran >= 7, "only {ran} fixture files found");
}

#[test]
fn a_failing_case_fails_the_run_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("wrong.json");
    let cases = r#"{"sanitizer": [
        {"name": "root delete allowed?", "command": {"kind": "shell", "script": "rm -rf /"}, "expect": "allow"},
        {"name": "ls allowed", "command": {"kind": "shell", "script": "ls"}, "expect": "allow"}
    ]}"#;
    std::fs::write(&fixture, cases).unwrap();
    let (ok, report) = plugin_test(&default_plugin("shell_sanitizer"), &fixture);
    assert!(!ok, "{report}");
    assert!(report.contains("root delete allowed?"), "{report}");
    assert!(report.contains("1 of 2 cases failed"), "{report}");
}

fn explain(wasm: &Path, body: &str) -> (bool, String) {
    let out = Command::new(binary())
        .args(["plugins", "test"])
        .arg(wasm)
        .args(["--command", body, "--json"])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_command_is_explained_through_one_component_by_the_chains_own_code() {
    use crate::common::plugins::test_plugin;
    let (ok, report) = explain(&test_plugin("pager_off"), r#"{"kind":"git","args":["status"]}"#);
    assert!(ok, "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["command"]["args"],
        serde_json::json!(["--no-pager", "status"]),
        "{report}"
    );
    let verdicts: Vec<_> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].clone())
        .collect();
    assert_eq!(verdicts, ["rewrite", "allow"], "the rewrite is judged again: {report}");
    assert_eq!(report["decisions"][0]["rewrite"]["args"][0], "--no-pager");

    let (ok, report) = explain(
        &test_plugin("force_push_guard"),
        r#"{"kind":"git","args":["push","-f"]}"#,
    );
    assert!(!ok, "a refusal fails the run: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(
        report["refused"]
            .as_str()
            .unwrap()
            .contains("force pushes are not allowed"),
        "{report}"
    );
    let (ok, report) = explain(
        &default_plugin("shell_sanitizer"),
        r#"{"kind":"shell","script":"ls; rm -rf /"}"#,
    );
    assert!(!ok && report.contains("\"deny\""), "{report}");
}
