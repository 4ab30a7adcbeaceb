//! One command running in a pod: started through the exec API under a wrapper that reports the
//! remote pid, streamed as it arrives, ended by the exit status from the status channel, killed
//! through a second exec, and failed promptly when its pod goes away.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::AttachedProcess;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use super::target::Target;
use crate::exec::{ExecError, Execution, ExitOutcome, Invocation, StreamKind};

const WRAPPER: &str = include_str!("scripts/wrapper.sh");
const KILL: &str = include_str!("scripts/kill.sh");
const READ_BUFFER: usize = 64 * 1024;
/// The wrapper's first line: `rdev-pid <pid>`.
const PID_MARKER: &[u8] = b"rdev-pid ";
const MAX_MARKER_LINE: usize = 64;
/// How long a closed stream waits for the pod watch to confirm the pod is gone, and how long a
/// killed command may take to report its end.
const SETTLE: Duration = Duration::from_secs(3);
/// How long output already received may take to drain once the command has ended. A stream
/// that broke off never reports its end to the readers, so they are stopped after this.
const DRAIN: Duration = Duration::from_millis(500);

type StatusFuture = Pin<Box<dyn Future<Output = Option<Status>> + Send + Sync>>;

/// A command running in a pod.
pub struct RemoteExecution {
    cluster: Cluster,
    target: Target,
    pid: u32,
    exec_id: String,
    process: AttachedProcess,
    status: StatusFuture,
    output: Option<mpsc::Receiver<(StreamKind, Vec<u8>)>>,
    pumps: Vec<JoinHandle<()>>,
    outcome: Option<Result<ExitOutcome, String>>,
    killed: bool,
}

/// The pod's command line for an invocation: the wrapper, the exec id, the workspace, the
/// request's variables, then the program (the pod keeps its own environment otherwise).
fn command_line(exec_id: &str, workspace: &str, invocation: &Invocation) -> Vec<String> {
    let wrapper = ["sh", "-c", WRAPPER, "rdev-exec", exec_id, workspace];
    let mut argv: Vec<String> = wrapper.map(String::from).to_vec();
    argv.extend(invocation.env.iter().map(|(name, value)| format!("{name}={value}")));
    argv.push("--".into());
    argv.push(invocation.program.clone());
    argv.extend(invocation.args.iter().cloned());
    argv
}

/// The exit status a status-channel message carries; `None` if it reports a failure to run.
pub(super) fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let causes = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_deref())
        .unwrap_or_default();
    causes
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
}

pub(super) fn message(status: &Status) -> String {
    status.message.clone().unwrap_or_else(|| "the exec failed".into())
}

impl RemoteExecution {
    /// Starts `invocation` in the target's pod and waits for the wrapper to report its pid.
    pub async fn start(cluster: &Cluster, target: Target, invocation: &Invocation) -> Result<Self, ExecError> {
        let exec_id = uuid::Uuid::new_v4().simple().to_string();
        let argv = command_line(&exec_id, &target.workspace, invocation);
        let params = target.attach_params(false);
        let mut process = cluster
            .call(cluster.pods_api().exec(&target.pod, argv, &params))
            .await?;
        let status: StatusFuture = Box::pin(process.take_status().expect("status taken once"));
        let (tx, rx) = mpsc::channel(256);
        let (pid_tx, pid_rx) = oneshot::channel();
        let mut pumps = Vec::new();
        if let Some(stdout) = process.stdout() {
            pumps.push(tokio::spawn(pump(stdout, StreamKind::Stdout, tx.clone(), Some(pid_tx))));
        }
        if let Some(stderr) = process.stderr() {
            pumps.push(tokio::spawn(pump(stderr, StreamKind::Stderr, tx, None)));
        }
        let mut execution = Self {
            cluster: cluster.clone(),
            target,
            pid: 0,
            exec_id,
            process,
            status,
            output: Some(rx),
            pumps,
            outcome: None,
            killed: false,
        };
        match pid_rx.await {
            Ok(pid) => execution.pid = pid,
            Err(_) => {
                let why = match execution.wait_for_status().await {
                    Ok(outcome) => format!("the command exited with status {} before it started", outcome.code),
                    Err(why) => why,
                };
                return Err(ExecError::Remote(why));
            }
        }
        Ok(execution)
    }

    /// The status channel's answer, or why none came: the pod was deleted, or the stream broke.
    async fn wait_for_status(&mut self) -> Result<ExitOutcome, String> {
        let killed = self.killed;
        let status = tokio::select! {
            status = &mut self.status => status,
            () = self.target.gone(&self.cluster) => {
                // The stream usually ends with the pod; give its status a moment to arrive.
                tokio::time::timeout(SETTLE, &mut self.status).await.ok().flatten()
            }
            () = tokio::time::sleep(SETTLE), if killed => {
                return Err("the command did not report its end after it was killed".into());
            }
        };
        match status {
            Some(status) => exit_code(&status)
                .map(|code| ExitOutcome { code })
                .ok_or_else(|| format!("pod {}: {}", self.target.pod, message(&status))),
            None => Err(self.closed_reason().await),
        }
    }

    /// Why the stream ended without a status.
    async fn closed_reason(&self) -> String {
        let gone = tokio::time::timeout(SETTLE, self.target.gone(&self.cluster))
            .await
            .is_ok();
        match gone {
            true => format!("pod {} was deleted while the command ran", self.target.pod),
            false => format!(
                "the connection to pod {} closed before the command's exit status arrived",
                self.target.pod
            ),
        }
    }
}

/// Forwards a stream's chunks; on stdout, first takes the wrapper's pid line off.
async fn pump(
    mut reader: impl AsyncRead + Unpin,
    kind: StreamKind,
    tx: mpsc::Sender<(StreamKind, Vec<u8>)>,
    mut pid: Option<oneshot::Sender<u32>>,
) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut pending = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if pid.is_some() {
            pending.extend_from_slice(chunk);
            let end = match pending.iter().position(|&b| b == b'\n') {
                Some(end) => end,
                None if pending.len() <= MAX_MARKER_LINE => continue,
                None => pending.len(),
            };
            let line = pending.get(..end).filter(|_| end < pending.len());
            let reported: Option<u32> = line
                .and_then(|line| line.strip_prefix(PID_MARKER))
                .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok());
            // Without the line the start fails; the output still flows so the stream can end.
            if let (Some(reported), Some(tx)) = (reported, pid.take()) {
                let _ = tx.send(reported);
                pending.drain(..=end);
            }
            chunk = &pending;
        }
        if !chunk.is_empty() && tx.send((kind, chunk.to_vec())).await.is_err() {
            break;
        }
        pending.clear();
    }
}

#[async_trait]
impl Execution for RemoteExecution {
    fn process_group(&self) -> Option<i64> {
        Some(i64::from(self.pid))
    }

    fn runner(&self) -> Option<String> {
        Some(self.target.runner(self.cluster.namespace(), &self.exec_id))
    }

    fn take_output(&mut self) -> mpsc::Receiver<(StreamKind, Vec<u8>)> {
        self.output.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    async fn wait(&mut self) -> std::io::Result<ExitOutcome> {
        if self.outcome.is_none() {
            let outcome = self.wait_for_status().await;
            self.outcome = Some(outcome);
            for pump in std::mem::take(&mut self.pumps) {
                let abort = pump.abort_handle();
                if tokio::time::timeout(DRAIN, pump).await.is_err() {
                    abort.abort();
                }
            }
            self.process.abort();
        }
        let outcome = self.outcome.clone().expect("set above");
        outcome.map_err(std::io::Error::other)
    }

    async fn kill(&mut self) {
        if self.outcome.is_some() || self.killed {
            return;
        }
        self.killed = true;
        if let Err(e) = kill_remote(&self.cluster, &self.target, self.pid, &self.exec_id).await {
            tracing::warn!(pod = %self.target.pod, pid = self.pid, error = %e, "could not kill a remote command");
        }
    }
}

/// Kills a remote process and its descendants through a second exec, and waits for that exec;
/// a process that does not carry `exec_id` is left alone.
pub(super) async fn kill_remote(cluster: &Cluster, target: &Target, pid: u32, exec_id: &str) -> Result<(), ExecError> {
    if target.is_gone(cluster) {
        return Ok(());
    }
    let argv = ["sh", "-c", KILL, "rdev-kill", &pid.to_string(), exec_id].map(String::from);
    let params = target.attach_params(false);
    let mut killer = cluster
        .call(cluster.pods_api().exec(&target.pod, argv, &params))
        .await?;
    let status = killer.take_status().expect("status taken once");
    match tokio::time::timeout(SETTLE, status).await {
        Ok(Some(status)) if exit_code(&status) == Some(0) => Ok(()),
        Ok(Some(status)) => Err(ExecError::Remote(message(&status))),
        Ok(None) | Err(_) => Err(ExecError::Remote("the kill command did not finish".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> Status {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn exit_codes_come_from_the_status_causes() {
        assert_eq!(exit_code(&status(serde_json::json!({"status": "Success"}))), Some(0));
        let killed = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "137"}]}
        }));
        assert_eq!(exit_code(&killed), Some(137));
        let refused = status(serde_json::json!({"status": "Failure", "message": "container not found"}));
        assert_eq!(exit_code(&refused), None);
        assert_eq!(message(&refused), "container not found");
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }

    fn run_kill(pid: u32, exec_id: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", KILL, "rdev-kill", &pid.to_string(), exec_id])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn the_kill_script_kills_the_marked_tree_and_nothing_else() {
        use std::os::unix::process::CommandExt;
        let spawn = |id: &str| {
            std::process::Command::new("sh")
                .args(["-c", "sleep 30 & echo $! > \"$0\"; wait"])
                .arg(std::env::temp_dir().join(format!("rdev-kill-test-{id}.pid")))
                .env("RDEV_EXEC_ID", id)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (mut ours, mut foreign) = (spawn(&id), spawn("someone-else"));
        let child_pid = |id: &str| {
            let file = std::env::temp_dir().join(format!("rdev-kill-test-{id}.pid"));
            for _ in 0..200 {
                if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|t| t.trim().parse().ok()) {
                    let _ = std::fs::remove_file(&file);
                    return pid;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("no pid file");
        };
        let (our_sleep, foreign_sleep): (u32, u32) = (child_pid(&id), child_pid("someone-else"));
        run_kill(foreign.id(), &id);
        run_kill(ours.id(), &id);
        ours.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(our_sleep), "the marked tree is gone");
        assert!(
            alive(foreign.id()) && alive(foreign_sleep),
            "an unmarked process is left alone"
        );
        run_kill(foreign.id(), "someone-else");
        foreign.wait().unwrap();
    }

    #[tokio::test]
    async fn the_pid_line_is_taken_off_stdout_even_when_split() {
        let (tx, mut rx) = mpsc::channel(8);
        let (pid_tx, pid_rx) = oneshot::channel();
        let (mut writer, reader) = tokio::io::duplex(64);
        let pumping = tokio::spawn(pump(reader, StreamKind::Stdout, tx, Some(pid_tx)));
        for part in [&b"rdev-p"[..], b"id 4242\nhel", b"lo\n"] {
            tokio::io::AsyncWriteExt::write_all(&mut writer, part).await.unwrap();
            tokio::task::yield_now().await;
        }
        drop(writer);
        pumping.await.unwrap();
        assert_eq!(pid_rx.await.unwrap(), 4242);
        let mut out = Vec::new();
        while let Some((_, chunk)) = rx.recv().await {
            out.extend(chunk);
        }
        assert_eq!(out, b"hello\n");
    }

    #[test]
    fn the_command_line_passes_values_as_arguments() {
        let invocation = Invocation {
            program: "git".into(),
            args: vec!["log".into(), "--format=%s; rm -rf /".into()],
            env: [("CI".to_owned(), "a b'c".to_owned())].into(),
            inherited: [("PATH".to_owned(), "/gateway/bin".to_owned())].into(),
        };
        let argv = command_line("e1", "/workspace", &invocation);
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(
            argv[3..],
            [
                "rdev-exec",
                "e1",
                "/workspace",
                "CI=a b'c",
                "--",
                "git",
                "log",
                "--format=%s; rm -rf /"
            ]
        );
    }
}
