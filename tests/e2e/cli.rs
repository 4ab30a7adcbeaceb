//! The command line as a new user meets it: configuration layering (file, `RDEV_*`, flags),
//! strict parsing, and what a first start creates.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::binary;

/// Starts `rdev serve` with the given arguments and environment; returns the address it
/// announced and the process.
fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (String, std::process::Child) {
    let mut child = Command::new(binary())
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().expect("banner").unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    (
        banner
            .strip_prefix("rdev listening on http://")
            .expect("banner")
            .to_owned(),
        child,
    )
}

#[test]
fn unknown_config_keys_are_named_and_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rdev.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[commands]\nprogramz = {}\n").unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("programz"), "{stderr}");
    assert!(
        !dir.path().join(".rdev").exists(),
        "nothing is created for a bad config"
    );
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rdev.toml"),
        "listen = \"127.0.0.1:1\"\ndata_dir = \"from-file\"\n",
    )
    .unwrap();
    let env = [
        ("RDEV_CONFIG", "rdev.toml"),
        ("RDEV_LISTEN", "127.0.0.1:2"),
        ("RDEV_DATA_DIR", "from-env"),
    ];
    let (addr, mut child) = serve(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--workspaces", "ws"],
        &env,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(addr, "127.0.0.1:1");
    assert_ne!(addr, "127.0.0.1:2");
    assert!(
        dir.path().join("from-env/rdev.db").exists(),
        "RDEV_DATA_DIR beats the file"
    );
    assert!(!dir.path().join("from-file").exists());
    assert!(dir.path().join("ws/demo").is_dir(), "--workspaces is used");
}

#[test]
fn first_start_creates_a_demo_repository_and_a_wal_database() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut child) = serve(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    let demo = dir.path().join("workspaces/demo");
    assert!(demo.join("README.md").is_file());
    let log = Command::new("git")
        .args(["log", "--oneline"])
        .current_dir(&demo)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&log.stdout).contains("Initial commit"));
    let db = dir.path().join(".rdev/rdev.db");
    let header = std::fs::read(&db).unwrap();
    assert_eq!(header[18], 2, "SQLite file format 2 means WAL journal mode");
}

#[test]
fn keys_create_requires_a_scope() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args(["keys", "create", "--name", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin"));
}
