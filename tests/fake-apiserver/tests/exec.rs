//! `Api::<Pod>::exec` through the real kube-rs websocket client, against real local processes.

#[path = "support/client.rs"]
mod support;

use std::time::Duration;

use fake_apiserver::{CpuHog, FakeApiServer, Options, PodSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, AttachedProcess};
use support::{NS, client, eventually};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const SECOND: Duration = Duration::from_secs(1);

/// A server with one single-container pod `web-0`, and a pod API on it.
async fn setup(options: Options) -> (FakeApiServer, Api<Pod>) {
    let server = FakeApiServer::start_with(options).await;
    server.create_pod(NS, PodSpec::new("web-0").container("main"));
    let pods = Api::default_namespaced(client(&server).await);
    (server, pods)
}

async fn read_all(mut reader: impl AsyncRead + Unpin) -> String {
    let mut text = String::new();
    reader.read_to_string(&mut text).await.unwrap();
    text
}

/// Collects stdout, stderr and the status of a finished exec.
async fn outcome(mut attached: AttachedProcess) -> (String, String, Option<Status>) {
    let (stdout, stderr) = (attached.stdout().unwrap(), attached.stderr().unwrap());
    let status = attached.take_status().unwrap();
    let all = async { tokio::join!(read_all(stdout), read_all(stderr), status) };
    tokio::time::timeout(5 * SECOND, all).await.expect("exec finishes")
}

#[tokio::test]
async fn exec_streams_output_and_reports_the_exit_code() {
    let (server, pods) = setup(Options::default()).await;
    let command = ["sh", "-c", "echo out; echo err >&2; exit 3"];
    let attached = pods.exec("web-0", command, &AttachParams::default()).await.unwrap();
    let (stdout, stderr, status) = outcome(attached).await;

    assert_eq!((stdout.as_str(), stderr.as_str()), ("out\n", "err\n"));
    let status = status.expect("a status frame");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );
    let record = &server.execs()[0];
    assert_eq!((record.pod.as_str(), record.container.as_str()), ("web-0", "main"));
    assert_eq!(
        (record.command.clone(), record.protocol.as_str()),
        (command.map(String::from).to_vec(), "v5.channel.k8s.io")
    );
}

#[tokio::test]
async fn exec_passes_stdin_and_its_close_under_v5() {
    let (_server, pods) = setup(Options::default()).await;
    let params = AttachParams::default().stdin(true);
    let mut attached = pods
        .exec("web-0", ["sh", "-c", "cat; echo done"], &params)
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    // Dropping kube's stdin half is not EOF (the simplex pipe stays open); shutting it down is.
    stdin.shutdown().await.unwrap();
    let (stdout, stderr, status) = outcome(attached).await;
    assert_eq!((stdout.as_str(), stderr.as_str()), ("hello\ndone\n", ""));
    assert_eq!(status.unwrap().status.as_deref(), Some("Success"));
}

/// A command that exits without reading its stdin leaves the client's stdin frames unread; a
/// server that then drops the socket resets the connection, and under load the reset destroyed
/// the status frame before the client read it (kube's exec then hangs: its output pipes never
/// end). The server now waits for the close handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_arrives_when_the_command_never_read_its_stdin() {
    let _hog = CpuHog::start();
    let (_server, pods) = setup(Options::default()).await;
    for round in 0..60 {
        let params = AttachParams::default().stdin(true);
        let command = ["sh", "-c", "echo refused >&2; exit 3"];
        let mut attached = pods.exec("web-0", command, &params).await.unwrap();
        let mut stdin = attached.stdin().unwrap();
        stdin.write_all(b"never read").await.unwrap();
        let (_, stderr, status) = outcome(attached).await;
        assert_eq!(stderr, "refused\n", "round {round}");
        assert_eq!(
            status.and_then(|s| s.reason).as_deref(),
            Some("NonZeroExitCode"),
            "round {round}"
        );
        drop(stdin);
    }
}

#[tokio::test]
async fn exec_falls_back_to_v4_when_the_server_only_speaks_v4() {
    let (server, pods) = setup(Options {
        exec_protocols: vec!["v4.channel.k8s.io"],
    })
    .await;
    let attached = pods
        .exec("web-0", ["echo", "hi"], &AttachParams::default())
        .await
        .unwrap();
    let (stdout, _, status) = outcome(attached).await;
    assert_eq!(stdout, "hi\n");
    assert_eq!(status.unwrap().status.as_deref(), Some("Success"));
    assert_eq!(server.execs()[0].protocol, "v4.channel.k8s.io");
}

#[tokio::test]
async fn process_outlives_a_dropped_websocket_until_its_pod_is_deleted() {
    let (server, pods) = setup(Options::default()).await;
    let attached = pods
        .exec("web-0", ["sh", "-c", "sleep 30 & sleep 30"], &AttachParams::default())
        .await
        .unwrap();
    assert!(eventually(SECOND, || server.running_processes("web-0").len() >= 2).await);
    drop(attached);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running = server.running_processes("web-0");
    assert!(
        running.len() >= 2,
        "shell and its background sleep still run: {running:?}"
    );
    assert!(running.contains(&server.execs()[0].pid));

    server.delete_pod(NS, "web-0");
    assert!(eventually(SECOND, || server.running_processes("web-0").is_empty()).await);
}

#[tokio::test]
async fn deleting_the_pod_ends_the_exec_without_a_status() {
    let (server, pods) = setup(Options::default()).await;
    let mut attached = pods
        .exec(
            "web-0",
            ["sh", "-c", "echo started; sleep 30"],
            &AttachParams::default(),
        )
        .await
        .unwrap();
    let mut stdout = attached.stdout().unwrap();
    let mut first = [0; 8];
    stdout.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"started\n");
    let status = attached.take_status().unwrap();

    server.delete_pod(NS, "web-0");
    let status = tokio::time::timeout(SECOND, status).await.expect("exec ends");
    assert!(status.is_none(), "no status frame: {status:?}");
    assert!(attached.join().await.is_err(), "the websocket was cut, not closed");
    assert!(eventually(SECOND, || server.running_processes("web-0").is_empty()).await);
}

#[tokio::test]
async fn exec_of_a_missing_program_is_an_internal_error() {
    let (server, pods) = setup(Options::default()).await;
    let attached = pods
        .exec("web-0", ["no-such-program-xyz"], &AttachParams::default())
        .await
        .unwrap();
    let (_, _, status) = outcome(attached).await;
    let status = status.unwrap();
    assert_eq!(
        (status.reason.as_deref(), status.code),
        (Some("InternalError"), Some(500))
    );
    assert!(status.message.unwrap().contains("executable file not found in $PATH"));
    assert_eq!(server.execs()[0].pid, 0);
}

#[tokio::test]
async fn exec_is_refused_before_the_upgrade_for_bad_targets() {
    let (server, pods) = setup(Options::default()).await;
    server.create_pod(NS, PodSpec::new("two").container("a").container("b"));
    let cases = [
        ("missing", AttachParams::default(), 404),
        ("web-0", AttachParams::default().container("other"), 400),
        ("two", AttachParams::default(), 400),
    ];
    for (pod, params, code) in cases {
        let Err(kube::Error::Api(status)) = pods.exec(pod, ["true"], &params).await else {
            panic!("{pod}: refused")
        };
        assert_eq!(status.code, code, "{pod}: {status:?}");
    }
    assert!(server.execs().is_empty());
}

#[tokio::test]
async fn exec_without_a_common_protocol_is_forbidden() {
    let (_server, pods) = setup(Options {
        exec_protocols: vec!["v6.channel.k8s.io"],
    })
    .await;
    let Err(kube::Error::Api(status)) = pods.exec("web-0", ["true"], &AttachParams::default()).await else {
        panic!("refused")
    };
    assert_eq!(status.code, 403);
}

#[tokio::test]
async fn dropping_the_server_kills_the_processes_it_started() {
    let (server, pods) = setup(Options::default()).await;
    let attached = pods
        .exec("web-0", ["sleep", "30"], &AttachParams::default())
        .await
        .unwrap();
    drop(attached);
    let pid = server.execs()[0].pid;
    assert!(alive(pid));
    drop(server);
    assert!(eventually(SECOND, || !alive(pid)).await, "sleep {pid} was killed");
}

/// Whether the process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
}
