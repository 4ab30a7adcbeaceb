//! Plugin authoring as a new user meets it (`docs/plugins.md`): in a fresh directory outside the
//! checkout, `rdev plugins new`, `rdev plugins build` and `rdev plugins deploy` take a plugin in
//! Rust, Python or JavaScript from nothing to live in a running gateway, where it refuses a
//! command. Every template of every world builds and passes the world's fixtures (the same file
//! in every language), and the Python and JavaScript shims pass their own tests.

mod deployments;
mod shims;
mod templates;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Db, Gateway, binary};

/// `rdev` with the environment a user's shell has (see `user_command`).
fn rdev(dir: &Path) -> Command {
    user_command(binary(), dir, "authoring")
}

/// `program` in `dir` with nothing of this test run's cargo in its environment, and Rust builds
/// sharing the target directory `target` (the SDK is compiled once per run).
fn user_command(program: impl AsRef<std::ffi::OsStr>, dir: &Path, target: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
            command.env_remove(key.as_ref());
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::env::temp_dir().join("rdev-e2e"), PathBuf::from)
        .join("wasm")
        .join(target);
    command.env("CARGO_TARGET_DIR", target);
    command
}

/// Runs `rdev ARGS` in `dir`; its stdout, or a panic with everything it printed.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    assert_tools();
    let output = rdev(dir).args(args).envs(env.iter().copied()).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "rdev {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// The language tools `scripts/test.sh` installs; a missing one is a failure, not a skip.
fn assert_tools() {
    for tool in ["componentize-py", "componentize-js", "cargo"] {
        assert!(
            which::which(tool).is_ok(),
            "`{tool}` is not on PATH: scripts/test.sh installs it (componentize-py with pip, componentize-js with npm)"
        );
    }
}

/// The three documented commands for `lang`, then the plugin judged by the gateway.
async fn from_nothing_to_live(lang: &'static str) {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let work = tempfile::tempdir().unwrap();
    let (dir, url, token) = (work.path().to_owned(), gw.url.clone(), gw.admin_token.clone());
    let started = Instant::now();
    let deployed = tokio::task::spawn_blocking(move || {
        run(
            &dir,
            &[
                "plugins",
                "new",
                "no-rm",
                "--world",
                "command-sanitizer",
                "--lang",
                lang,
            ],
            &[],
        );
        run(&dir, &["plugins", "build", "no-rm"], &[]);
        run(
            &dir,
            &["plugins", "deploy", "no-rm", "--url", &url],
            &[("RDEV_TOKEN", &token)],
        )
    })
    .await
    .unwrap();
    eprintln!(
        "{lang}: from `rdev plugins new` to live in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(deployed.contains("deployed `no-rm`"), "{deployed}");

    let (status, body) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "shell", "script": "make && rm -rf build"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(message, "denied by `no-rm`: program `rm` is refused", "{body}");
    let (status, body) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "shell", "script": "ls -l"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, plugins) = gw.get("/v1/plugins").await;
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"no-rm") && names.contains(&"shell-sanitizer"),
        "the defaults stay: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_plugin_goes_live_in_three_commands() {
    from_nothing_to_live("rust").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_goes_live_in_three_commands() {
    from_nothing_to_live("python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_goes_live_in_three_commands() {
    from_nothing_to_live("js").await;
}

#[test]
fn new_refuses_to_overwrite_and_build_names_a_missing_tool() {
    let work = tempfile::tempdir().unwrap();
    run(
        work.path(),
        &[
            "plugins",
            "new",
            "mine",
            "--world",
            "request-validator",
            "--lang",
            "python",
        ],
        &[],
    );
    let again = rdev(work.path())
        .args(["plugins", "new", "mine", "--world", "request-validator", "--lang", "js"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty: nothing was written"));
    assert!(work.path().join("mine/app.py").is_file() && !work.path().join("mine/app.js").exists());

    let without_tools = rdev(work.path())
        .args(["plugins", "build", "mine"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!without_tools.status.success());
    let stderr = String::from_utf8_lossy(&without_tools.stderr);
    assert!(
        stderr.contains("`componentize-py` is not on PATH: pip install componentize-py"),
        "{stderr}"
    );

    let not_built = rdev(work.path()).args(["plugins", "deploy", "mine"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&not_built.stderr);
    assert!(
        stderr.contains("is not built yet: run `rdev plugins build mine`"),
        "{stderr}"
    );
}

#[test]
fn entry_prints_the_config_files_plugins_entry_of_a_component() {
    let work = tempfile::tempdir().unwrap();
    let component = crate::common::plugins::test_plugin("force_push_guard");
    let printed = run(
        work.path(),
        &[
            "plugins",
            "entry",
            component.to_str().unwrap(),
            "--name",
            "guard",
            "--order",
            "5",
        ],
        &[],
    );
    let table: toml::Table = toml::from_str(&printed).unwrap();
    let entry = &table["plugins"].as_array().unwrap()[0];
    assert_eq!(entry["name"].as_str(), Some("guard"), "{printed}");
    assert_eq!(
        entry["world"].as_str(),
        Some("command-sanitizer"),
        "the world is read from the exports: {printed}"
    );
    assert_eq!(entry["file"].as_str(), Some("force_push_guard.wasm"), "{printed}");
    assert_eq!(entry["order"].as_integer(), Some(5), "{printed}");
}
