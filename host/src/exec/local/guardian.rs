//! The guardian: a tiny process (this binary, as `rdev __reaper`) that outlives the gateway just
//! long enough to kill what its commands left running. The gateway writes each command's process
//! group to a pipe on the guardian's stdin as the command starts, and takes it back when the
//! command's group is gone. When the pipe reaches end of file the gateway is gone — after a clean
//! exit, a panic or a SIGKILL, which no handler inside the gateway ever sees — and the guardian
//! SIGKILLs every group still registered, then exits. It needs no `unsafe`: a pipe and `killpg`.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::Pid;

/// The hidden subcommand that runs the guardian.
pub const SUBCOMMAND: &str = "__reaper";

/// The guardian of this process, once [`Guardian::install`] started it.
static INSTALLED: OnceLock<Arc<Guardian>> = OnceLock::new();

/// Why the guardian could not be started.
#[derive(Debug, thiserror::Error)]
pub enum GuardianError {
    /// The process could not be spawned.
    #[error("cannot start the guardian process: {0}")]
    Spawn(#[source] std::io::Error),
    /// Its pipe could not be made non-blocking.
    #[error("cannot set up the guardian's pipe: {0}")]
    Pipe(#[source] nix::Error),
    /// This process already has one.
    #[error("this process already has a guardian")]
    AlreadyInstalled,
}

/// The gateway's end of the guardian: the write end of its stdin.
pub struct Guardian {
    pipe: ChildStdin,
    process: Child,
    lost: AtomicBool,
}

impl std::fmt::Debug for Guardian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guardian").field("pid", &self.process.id()).finish()
    }
}

impl Guardian {
    /// Starts the guardian of this process (`rdev serve` does, for the local backend). It runs
    /// in a process group of its own, so that a terminal's Ctrl-C reaches the gateway (which
    /// shuts down in order) but not the guardian.
    pub fn install() -> Result<Arc<Self>, GuardianError> {
        if INSTALLED.get().is_some() {
            return Err(GuardianError::AlreadyInstalled);
        }
        // `/proc/self/exe` still names this binary after it was replaced or deleted on disk.
        let mut process = Command::new("/proc/self/exe")
            .arg(SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(GuardianError::Spawn)?;
        let pipe = process.stdin.take().expect("stdin was piped");
        // The gateway must never block on a stuck guardian: a write that would block fails and
        // is logged instead. Messages are far shorter than PIPE_BUF, so each is written whole
        // or not at all.
        fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(GuardianError::Pipe)?;
        let guardian = Arc::new(Self {
            pipe,
            process,
            lost: AtomicBool::new(false),
        });
        INSTALLED
            .set(guardian.clone())
            .map_err(|_| GuardianError::AlreadyInstalled)?;
        tracing::debug!(pid = guardian.process.id(), "guardian started");
        Ok(guardian)
    }

    /// The guardian of this process, if one was installed; in-process tests and benchmarks run
    /// without one (their executable is not `rdev`).
    pub fn installed() -> Option<Arc<Self>> {
        INSTALLED.get().cloned()
    }

    /// Asks the guardian to kill `pgid` if the gateway dies; undone when the registration drops.
    pub fn register(self: &Arc<Self>, pgid: i32) -> Registration {
        self.send('+', pgid);
        Registration {
            guardian: self.clone(),
            pgid,
        }
    }

    fn send(&self, op: char, pgid: i32) {
        let line = format!("{op}{pgid}\n");
        match (&self.pipe).write(line.as_bytes()) {
            Ok(n) if n == line.len() => {}
            outcome => {
                if !self.lost.swap(true, Ordering::Relaxed) {
                    let error = outcome
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "short write".into());
                    tracing::error!(
                        %error,
                        "the guardian process is not listening: children of commands may outlive a crash of the gateway"
                    );
                }
            }
        }
    }
}

/// A process group the guardian kills if the gateway dies; dropping it tells the guardian the
/// group is gone (drop it only after the group was killed or has ended).
#[derive(Debug)]
pub struct Registration {
    guardian: Arc<Guardian>,
    pgid: i32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.guardian.send('-', self.pgid);
    }
}

/// The body of `rdev __reaper`: follows the registrations on stdin until end of file, then
/// kills every group still registered.
pub fn run() -> ExitCode {
    // Blocked signals stay pending: a service manager's SIGTERM or a closed terminal's SIGHUP
    // must not take the guardian away while the gateway still shuts down. SIGKILL cannot be
    // blocked, so an operator can still stop it.
    let mut held = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        held.add(signal);
    }
    if let Err(e) = held.thread_block() {
        eprintln!("rdev guardian: cannot block signals: {e}");
    }
    for pgid in follow(std::io::stdin().lock()) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    ExitCode::SUCCESS
}

/// The groups still registered when `input` ends (or fails).
fn follow(input: impl BufRead) -> HashSet<i32> {
    let mut groups = HashSet::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let (op, number) = line.split_at_checked(1).unwrap_or_default();
        // 0 and 1 would name the guardian's own group and init's: never a command's.
        let Some(pgid) = number.parse::<i32>().ok().filter(|&p| p > 1) else {
            continue;
        };
        match op {
            "+" => groups.insert(pgid),
            "-" => groups.remove(&pgid),
            _ => false,
        };
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_the_groups_still_registered_at_end_of_file() {
        let input = "+100\n+200\n-100\n+300\n";
        assert_eq!(follow(input.as_bytes()), HashSet::from([200, 300]));
    }

    #[test]
    fn never_names_its_own_group_init_or_garbage() {
        let input = "+0\n+1\n+-5\n+abc\n?7\n\n+42";
        assert_eq!(follow(input.as_bytes()), HashSet::from([42]));
    }
}
