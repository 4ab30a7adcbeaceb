//! `rdev plugins test`: the default plugins' fixture files pass against their compiled
//! components, and a failing case fails the run with a readable report.

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
