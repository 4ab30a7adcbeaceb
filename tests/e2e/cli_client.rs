//! `rdev run` as a user runs it against a gateway: output live, the command's exit code, a
//! refusal with its reason, a resume after the connection drops with no line lost or repeated,
//! and Ctrl-C cancelling the command.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::common::{Db, Gateway, binary};

/// How long a run may take on a loaded machine.
const RUN_BOUND: Duration = Duration::from_secs(60);

fn rdev_run(url: &str, token: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    command
        .arg("run")
        .args(args)
        .env("RDEV_URL", url)
        .env("RDEV_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run_to_end(gw: &Gateway, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(RUN_BOUND, rdev_run(&gw.url, &gw.admin_token, args).output())
        .await
        .expect("rdev run ends")
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdev_run_prints_the_output_and_exits_with_the_commands_code() {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let (code, out, err) = run_to_end(&gw, &["demo", "--", "git", "log", "--oneline"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Initial commit"), "{out}");
    let (code, out, err) = run_to_end(&gw, &["demo", "--shell", "echo to-out; echo to-err >&2; exit 3"]).await;
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(out, "to-out\n");
    assert!(err.contains("to-err\n"), "{err}");
    let (code, out, err) = run_to_end(&gw, &["demo", "--shell", "ls; rm -rf /"]).await;
    assert_eq!(code, 126, "a refusal has its own code: {out}{err}");
    assert!(
        err.contains("denied by `shell-sanitizer`") && err.contains("request"),
        "{err}"
    );
    let (code, _, err) = run_to_end(&gw, &["demo", "--timeout", "1", "--shell", "sleep 30"]).await;
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("timed_out"), "the reason is on stderr: {err}");
    let (code, out, _) = run_to_end(&gw, &["demo", "--detach", "--shell", "true"]).await;
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("cmd_"), "{out}");
    let (code, _, err) = run_to_end(&gw, &["nowhere", "--shell", "true"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
}

/// A TCP proxy to `upstream` whose open connections are cut when `cut` is notified; new
/// connections go through again. `accepted` counts them.
async fn proxy(upstream: String, cut: Arc<Notify>, accepted: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let (upstream, cut) = (upstream.clone(), cut.clone());
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = cut.notified() => {}
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdev_run_resumes_after_a_dropped_connection_and_ctrl_c_cancels() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let cut = Arc::new(Notify::new());
    let accepted = Arc::new(AtomicUsize::new(0));
    let via = proxy(
        gw.url.trim_start_matches("http://").to_owned(),
        cut.clone(),
        accepted.clone(),
    )
    .await;
    let script = "for i in $(seq 1 40); do echo line $i; sleep 0.05; done";
    let mut child = rdev_run(&via, &gw.admin_token, &["demo", "--shell", script])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = tokio::time::timeout(RUN_BOUND, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        if seen.len() == 5 {
            cut.notify_waiters();
        }
        seen.push(line);
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
    let expected: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
    assert_eq!(seen, expected, "no line lost or repeated across the cut");
    let connections = accepted.load(Ordering::SeqCst);
    assert!(
        connections >= 2,
        "the client connected again after the cut: {connections} connections"
    );

    let mut child = rdev_run(&gw.url, &gw.admin_token, &["demo", "--shell", "echo started; sleep 60"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(RUN_BOUND, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("started"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::time::timeout(RUN_BOUND, child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130));
    let (_, page) = gw.get("/v1/projects/demo/commands?limit=1").await;
    assert_eq!(page["commands"][0]["state"], "cancelled", "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_subcommands_print_tables_or_json_and_the_apis_errors() {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let id = gw.shell("demo", "echo hi").await;
    gw.wait_done(&id).await;
    let rdev = |args: &[&str]| {
        let out = std::process::Command::new(binary())
            .args(args)
            .env("RDEV_URL", &gw.url)
            .env("RDEV_TOKEN", &gw.admin_token)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = rdev(&["projects"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME") && out.contains("demo"), "{out}");
    let (code, out, _) = rdev(&["commands", "list", "demo"]);
    assert_eq!(code, 0);
    assert!(out.contains(&id) && out.contains("succeeded"), "{out}");
    let (code, out, _) = rdev(&["commands", "show", &id, "--output", "json"]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["id"], id.as_str());
    let (code, _, err) = rdev(&["commands", "cancel", &id]);
    assert_eq!(code, 1, "an ended command cannot be cancelled");
    assert!(
        err.contains("already ended") && err.contains("request"),
        "the API's message and request id: {err}"
    );
    let (code, out, err) = rdev(&["commands", "logs", &id]);
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    let (code, out, _) = rdev(&["commands", "logs", "--follow", &id]);
    assert_eq!((code, out.as_str()), (0, "hi\n"));
    let (code, out, _) = rdev(&["plugins", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("shell-sanitizer") && out.contains("active"), "{out}");
    let (code, out, _) = rdev(&["audit", "--action", "command.accepted", "-o", "json"]);
    assert_eq!(code, 0);
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["events"][0]["target"], id.as_str());
    let (_, key) = gw
        .key(serde_json::json!({"name": "spare", "scopes": ["projects:read"]}))
        .await;
    let (code, out, _) = rdev(&["keys", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("spare"), "{out}");
    let key_id = crate::common::key_id_of(&key);
    let (code, out, _) = rdev(&["keys", "revoke", &key_id]);
    assert_eq!((code, out.trim()), (0, format!("revoked {key_id}").as_str()));
    let out = std::process::Command::new(binary())
        .args(["projects"])
        .env("RDEV_URL", &gw.url)
        .env_remove("RDEV_TOKEN")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no API key"),
        "a missing token is named"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdev_login_keeps_the_token_in_a_private_profile_and_never_prints_it() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start(Db::Sqlite, "").await;
    let config = tempfile::tempdir().unwrap();
    let mut login = std::process::Command::new(binary())
        .args(["login", "--url", &gw.url])
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("RDEV_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(gw.admin_token.as_bytes())
        .unwrap();
    let out = login.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}");
    assert!(
        !printed.contains(&gw.admin_token),
        "the token is never echoed: {printed}"
    );
    let profile = config.path().join("rdev/profile.toml");
    let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the profile is private");
    let out = std::process::Command::new(binary())
        .args(["projects", "-o", "json"])
        .env("XDG_CONFIG_HOME", config.path())
        .env_remove("RDEV_TOKEN")
        .env_remove("RDEV_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo"));
    let mut wrong = std::process::Command::new(binary())
        .args(["login", "--url", &gw.url])
        .env("XDG_CONFIG_HOME", config.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wrong.stdin.take().unwrap().write_all(b"rdev_key_wrong").unwrap();
    let out = wrong.wait_with_output().unwrap();
    assert!(!out.status.success(), "a refused token is not saved");
    assert!(
        std::fs::read_to_string(&profile).unwrap().contains(&gw.admin_token),
        "the old profile stays"
    );
}
