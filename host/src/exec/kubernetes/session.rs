//! One command running in a pod: started through the exec API under a wrapper that reports the
//! remote pid, streamed as it arrives, ended by the exit status from the status channel (or by
//! the loss of the connection, see `channel`), killed through a second exec that is retried
//! until confirmed, and failed promptly when its pod goes away.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::channel::{self, End, exit_code, message};
use super::cluster::Cluster;
use super::kill::Killing;
use super::target::Target;
use crate::exec::{ExecError, Execution, ExitOutcome, Invocation, PendingKill, StreamKind};

const WRAPPER: &str = include_str!("scripts/wrapper.sh");
/// The wrapper's first line: `rdev-pid <pid>`.
const PID_MARKER: &[u8] = b"rdev-pid ";
const MAX_MARKER_LINE: usize = 64;
/// How long a closed stream waits for the pod watch to confirm the pod is gone, and how long a
/// killed command may take to report its end.
const SETTLE: Duration = Duration::from_secs(3);
/// How long output already received may take to drain once the command has ended.
const DRAIN: Duration = Duration::from_millis(500);
/// How long a kill waits for its confirmation before the caller is told it is not confirmed
/// (the kill goes on): short enough that a cancel can answer with the truth.
const KILL_WAIT: Duration = Duration::from_secs(4);

/// A command running in a pod.
pub struct RemoteExecution {
    cluster: Cluster,
    target: Target,
    pid: u32,
    exec_id: String,
    session: channel::Session,
    output: Option<mpsc::Receiver<(StreamKind, Vec<u8>)>>,
    pumps: Vec<JoinHandle<()>>,
    outcome: Option<Result<ExitOutcome, Ended>>,
    killing: Option<Killing>,
}

/// Why a command has no exit status, and whether its process may still be running.
#[derive(Debug, Clone)]
struct Ended {
    reason: String,
    may_still_run: bool,
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

/// What a client is told when the connection carrying a command went silent.
pub(super) fn lost_reason(pod: &str, silent: Duration) -> String {
    format!(
        "the connection to the Kubernetes API server was lost (nothing arrived for {}s, not even \
         a pong): the state of the command in pod {pod} is unknown",
        silent.as_secs()
    )
}

impl RemoteExecution {
    /// Starts `invocation` in the target's pod and waits for the wrapper to report its pid.
    pub async fn start(cluster: &Cluster, target: Target, invocation: &Invocation) -> Result<Self, ExecError> {
        // The command's own id: unique per run, and known to a restart that finds no record of
        // the process (`kill_unrecorded`).
        let exec_id = invocation.command_id.clone();
        let argv = command_line(&exec_id, &target.workspace, invocation);
        let mut session = channel::open(cluster, &target, argv, None).await?;
        let (tx, rx) = mpsc::channel(256);
        let (pid_tx, pid_rx) = oneshot::channel();
        let (stdout, stderr) = session.streams();
        let pumps = vec![
            tokio::spawn(pump(stdout, StreamKind::Stdout, tx.clone(), Some(pid_tx))),
            tokio::spawn(pump(stderr, StreamKind::Stderr, tx, None)),
        ];
        let mut execution = Self {
            cluster: cluster.clone(),
            target,
            pid: 0,
            exec_id,
            session,
            output: Some(rx),
            pumps,
            outcome: None,
            killing: None,
        };
        match pid_rx.await {
            Ok(pid) => execution.pid = pid,
            Err(_) => {
                let why = match execution.wait_for_status().await {
                    Ok(outcome) => format!("the command exited with status {} before it started", outcome.code),
                    Err(ended) => ended.reason,
                };
                return Err(ExecError::Remote(why));
            }
        }
        Ok(execution)
    }

    /// The status channel's answer, or why none came: the pod was deleted, the stream broke,
    /// or the connection went silent.
    async fn wait_for_status(&mut self) -> Result<ExitOutcome, Ended> {
        let killed = self.killing.is_some();
        let end = tokio::select! {
            end = self.session.end() => Some(end),
            () = self.target.gone(&self.cluster) => {
                // The stream usually ends with the pod; give its status a moment to arrive.
                tokio::time::timeout(SETTLE, self.session.end()).await.ok()
            }
            () = tokio::time::sleep(SETTLE), if killed => {
                return Err(Ended {
                    reason: "the command did not report its end after it was killed".into(),
                    may_still_run: true,
                });
            }
        };
        match end {
            Some(End::Status(status)) => exit_code(&status)
                .map(|code| ExitOutcome { code })
                .ok_or_else(|| Ended {
                    reason: format!("pod {}: {}", self.target.pod, message(&status)),
                    may_still_run: false,
                }),
            Some(End::Lost(silent)) => Err(Ended {
                reason: lost_reason(&self.target.pod, silent),
                may_still_run: true,
            }),
            Some(End::Closed | End::Broken(_)) | None => Err(self.closed_reason().await),
        }
    }

    /// Why the stream ended without a status.
    async fn closed_reason(&self) -> Ended {
        let gone = tokio::time::timeout(SETTLE, self.target.gone(&self.cluster))
            .await
            .is_ok();
        match gone {
            true => Ended {
                reason: format!("pod {} was deleted while the command ran", self.target.pod),
                may_still_run: false,
            },
            false => Ended {
                reason: format!(
                    "the connection to pod {} closed before the command's exit status arrived",
                    self.target.pod
                ),
                may_still_run: true,
            },
        }
    }
}

/// Forwards a stream's chunks; on stdout, first takes the wrapper's pid line off.
async fn pump(
    mut chunks: mpsc::Receiver<Vec<u8>>,
    kind: StreamKind,
    tx: mpsc::Sender<(StreamKind, Vec<u8>)>,
    mut pid: Option<oneshot::Sender<u32>>,
) {
    let mut pending = Vec::new();
    while let Some(received) = chunks.recv().await {
        let mut chunk = &received[..];
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
        }
        let outcome = self.outcome.clone().expect("set above");
        outcome.map_err(|ended| std::io::Error::other(ended.reason))
    }

    /// Kills the tree unless it is known to have ended; a command whose connection was lost
    /// is killed too, as its process may still run. The kill is retried until confirmed.
    async fn kill(&mut self) {
        let ended = match &self.outcome {
            Some(Ok(_)) => return,
            Some(Err(ended)) if !ended.may_still_run => return,
            Some(Err(_)) => true,
            None => false,
        };
        if self.killing.is_some() {
            return;
        }
        let mut killing = Killing::start(&self.cluster, &self.target, Some(self.pid), &self.exec_id);
        // With the connection already lost the answer is known: say so now, kill when possible.
        if !ended {
            killing.confirmed_within(KILL_WAIT).await;
        }
        self.killing = Some(killing);
    }

    fn unconfirmed_kill(&mut self) -> Option<PendingKill> {
        self.killing.as_ref()?.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
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

    #[tokio::test]
    async fn the_pid_line_is_taken_off_stdout_even_when_split() {
        let (tx, mut rx) = mpsc::channel(8);
        let (pid_tx, pid_rx) = oneshot::channel();
        let (chunks, received) = mpsc::channel(8);
        let pumping = tokio::spawn(pump(received, StreamKind::Stdout, tx, Some(pid_tx)));
        for part in [&b"rdev-p"[..], b"id 4242\nhel", b"lo\n"] {
            chunks.send(part.to_vec()).await.unwrap();
        }
        drop(chunks);
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
            command_id: "cmd_test".into(),
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
