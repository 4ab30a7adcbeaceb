//! Killing a command's process tree in its pod through a second exec of `scripts/kill.sh`, and
//! retrying it with backoff until it is confirmed (the script ran: the tree is gone, or was
//! already) or the pod is gone. A kill that never reached the pod is not a kill: callers learn
//! whether it was confirmed, and can wait for it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::channel::{self, End};
use super::channel::{exit_code, message};
use super::cluster::Cluster;
use super::target::Target;
use crate::exec::{ExecError, PendingKill};

const KILL: &str = include_str!("scripts/kill.sh");
/// How long one kill exec may take to report its end once started.
const KILL_EXEC: Duration = Duration::from_secs(5);
/// The first retry comes quickly; later ones back off to at most `MAX_RETRY` apart, so a healed
/// path is noticed within seconds.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Kills a remote process and its descendants once; a process that does not carry `exec_id`
/// is left alone. Without a `pid` (none was recorded), every process carrying `exec_id` is.
pub(super) async fn kill_once(
    cluster: &Cluster,
    target: &Target,
    pid: Option<u32>,
    exec_id: &str,
) -> Result<(), ExecError> {
    let pid = pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string());
    let argv = ["sh", "-c", KILL, "rdev-kill", &pid, exec_id].map(String::from);
    let mut session = channel::open(cluster, target, argv.to_vec(), None).await?;
    match tokio::time::timeout(KILL_EXEC, session.end()).await {
        Ok(End::Status(status)) if exit_code(&status) == Some(0) => Ok(()),
        Ok(End::Status(status)) => Err(ExecError::Remote(message(&status))),
        Ok(End::Lost(_)) => Err(ExecError::Unavailable(
            "the connection to the API server was lost during the kill".into(),
        )),
        Ok(End::Closed | End::Broken(_)) | Err(_) => Err(ExecError::Remote("the kill command did not finish".into())),
    }
}

/// Where a kill stands.
#[derive(Debug, Clone)]
enum State {
    /// Not confirmed yet; the last attempt's error.
    Trying { attempts: u32, error: String },
    /// Done: the tree is gone, or its pod is.
    Confirmed { attempts: u32, how: &'static str },
}

/// A kill in progress on its own task; the task stops once confirmed or at shutdown.
pub(super) struct Killing {
    pod: String,
    started: Instant,
    state: watch::Receiver<State>,
}

impl Killing {
    /// Starts killing `pid` (or, without one, what carries `exec_id`) in the target's pod,
    /// retrying until confirmed.
    pub(super) fn start(cluster: &Cluster, target: &Target, pid: Option<u32>, exec_id: &str) -> Self {
        let initial = State::Trying {
            attempts: 0,
            error: String::new(),
        };
        let (tx, state) = watch::channel(initial);
        let pod = target.pod.clone();
        let (cluster, target, exec_id) = (cluster.clone(), target.clone(), exec_id.to_owned());
        let stop = cluster.stopping();
        tokio::spawn(async move {
            tokio::select! {
                () = retry(&cluster, &target, pid, &exec_id, &tx) => {}
                () = stop.cancelled() => {}
            }
        });
        Self {
            pod,
            started: Instant::now(),
            state,
        }
    }

    /// Waits up to `limit` for the confirmation; whether it came.
    pub(super) async fn confirmed_within(&mut self, limit: Duration) -> bool {
        let confirmed = self.state.wait_for(|s| matches!(s, State::Confirmed { .. }));
        tokio::time::timeout(limit, confirmed).await.is_ok_and(|r| r.is_ok())
    }

    /// What the caller records while the kill is not confirmed, and a future that resolves with
    /// a note once it is; `None` if it already is.
    pub(super) fn pending(&self) -> Option<PendingKill> {
        let State::Trying { attempts, error } = &*self.state.borrow() else {
            return None;
        };
        let tried = match attempts {
            0 => "the kill is not confirmed yet".to_owned(),
            n => format!("the kill is not confirmed after {n} attempt(s) ({error})"),
        };
        let reason = format!(
            "{tried}: the process in pod {} may still be running, and the gateway keeps trying to kill it",
            self.pod
        );
        let (mut state, started) = (self.state.clone(), self.started);
        let confirmed = async move {
            let done = state
                .wait_for(|s| matches!(s, State::Confirmed { .. }))
                .await
                .map(|s| s.clone());
            match done {
                Ok(State::Confirmed { attempts, how }) => format!(
                    "the kill was confirmed {}s later, at attempt {attempts} ({how})",
                    started.elapsed().as_secs()
                ),
                // The gateway is stopping; nothing will be recorded.
                _ => std::future::pending().await,
            }
        };
        Some(PendingKill {
            reason,
            confirmed: Box::pin(confirmed),
        })
    }
}

async fn retry(cluster: &Cluster, target: &Target, pid: Option<u32>, exec_id: &str, state: &watch::Sender<State>) {
    let mut delay = FIRST_RETRY;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match kill_once(cluster, target, pid, exec_id).await {
            Ok(()) => {
                state.send_replace(State::Confirmed {
                    attempts,
                    how: "the process tree is gone",
                });
                return;
            }
            Err(e) => e,
        };
        if pod_is_gone(cluster, target, &error).await {
            state.send_replace(State::Confirmed {
                attempts,
                how: "the pod is gone",
            });
            return;
        }
        tracing::warn!(pod = %target.pod, ?pid, attempts, error = %error, "could not kill a remote command; retrying");
        state.send_replace(State::Trying {
            attempts,
            error: error.to_string(),
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = target.gone(cluster) => {}
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Whether the pod the kill was meant for is gone, by the watch or, when the API server answered
/// the kill with a refusal, by asking it.
async fn pod_is_gone(cluster: &Cluster, target: &Target, error: &ExecError) -> bool {
    if target.is_gone(cluster) {
        return true;
    }
    if !matches!(error, ExecError::Remote(_)) {
        return false;
    }
    match cluster.call(cluster.pods_api().get_opt(&target.pod)).await {
        Ok(None) => true,
        Ok(Some(pod)) => target.uid.is_some() && pod.metadata.uid != target.uid,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }

    fn run_kill(pid: u32, exec_id: &str) {
        run_kill_script(&pid.to_string(), exec_id);
    }

    fn run_kill_script(pid: &str, exec_id: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", KILL, "rdev-kill", pid, exec_id])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A shell in its own group with a `sleep` child, both marked `id`.
    fn spawn_marked(id: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $! > \"$0\"; wait"])
            .arg(std::env::temp_dir().join(format!("rdev-kill-test-{id}.pid")))
            .env("RDEV_EXEC_ID", id)
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn child_pid(id: &str) -> u32 {
        let file = std::env::temp_dir().join(format!("rdev-kill-test-{id}.pid"));
        for _ in 0..200 {
            if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|t| t.trim().parse().ok()) {
                let _ = std::fs::remove_file(&file);
                return pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no pid file");
    }

    #[test]
    fn without_a_pid_the_kill_script_kills_what_carries_the_mark() {
        let (ours_id, foreign_id) = (
            uuid::Uuid::new_v4().simple().to_string(),
            uuid::Uuid::new_v4().simple().to_string(),
        );
        let (mut ours, mut foreign) = (spawn_marked(&ours_id), spawn_marked(&foreign_id));
        let (our_sleep, foreign_sleep) = (child_pid(&ours_id), child_pid(&foreign_id));
        run_kill_script("-", &ours_id);
        ours.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(our_sleep), "the marked child is gone");
        assert!(
            alive(foreign.id()) && alive(foreign_sleep),
            "other marks are left alone"
        );
        run_kill_script("-", &foreign_id);
        foreign.wait().unwrap();
    }

    #[test]
    fn the_kill_script_kills_the_marked_tree_and_nothing_else() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (mut ours, mut foreign) = (spawn_marked(&id), spawn_marked("someone-else"));
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
}
