//! The "containers": process groups started by exec, per pod, and the kubelet-like kill on pod deletion.

use std::collections::HashMap;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

/// Exec sessions and process groups of one pod.
struct PodProcesses {
    /// Cancelled when the pod is deleted: its exec sessions then drop their websockets abruptly.
    killed: CancellationToken,
    /// Process group ids (each exec's child leads its own group).
    groups: Vec<i32>,
}

/// Process groups keyed by (namespace, pod name).
pub(crate) struct Processes {
    /// The server's shutdown token; each pod's `killed` token is a child of it.
    server: CancellationToken,
    pods: HashMap<(String, String), PodProcesses>,
}

impl Processes {
    pub(crate) fn new(server: CancellationToken) -> Self {
        Self {
            server,
            pods: HashMap::new(),
        }
    }

    /// The token an exec session into this pod watches for the pod's deletion.
    pub(crate) fn killed_token(&mut self, namespace: &str, pod: &str) -> CancellationToken {
        let entry = self.pods.entry((namespace.into(), pod.into()));
        let server = &self.server;
        let pod = entry.or_insert_with(|| PodProcesses {
            killed: server.child_token(),
            groups: Vec::new(),
        });
        pod.killed.clone()
    }

    /// Records a process group started in this pod; call after `killed_token`.
    pub(crate) fn add_group(&mut self, namespace: &str, pod: &str, pgid: i32) {
        if let Some(pod) = self.pods.get_mut(&(namespace.into(), pod.into())) {
            pod.groups.push(pgid);
        }
    }

    /// Process groups of every pod with this name, in any namespace.
    pub(crate) fn groups_named(&self, pod: &str) -> Vec<i32> {
        let named = self.pods.iter().filter(|((_, name), _)| name == pod);
        named.flat_map(|(_, p)| p.groups.iter().copied()).collect()
    }

    /// What the kubelet does when a pod goes: end its exec streams and SIGKILL its processes.
    /// The groups stay listed, so `running_processes` shows when they are really gone; a pod
    /// recreated under the same name gets a fresh token.
    pub(crate) fn kill_pod(&mut self, namespace: &str, pod: &str) {
        if let Some(pod) = self.pods.get_mut(&(namespace.into(), pod.into())) {
            pod.kill();
            pod.killed = self.server.child_token();
        }
    }

    /// Kills every pod's processes, when the server goes away.
    pub(crate) fn kill_all(&self) {
        self.pods.values().for_each(PodProcesses::kill);
    }
}

impl PodProcesses {
    fn kill(&self) {
        self.killed.cancel();
        for pgid in &self.groups {
            // ESRCH only means the whole group has already exited.
            let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
        }
    }
}

/// Live (non-zombie) processes whose process group is one of `groups`, read from `/proc/*/stat`.
pub(crate) fn live_members(groups: &[i32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
    let mut live: Vec<u32> = pids
        .filter(|pid| stat_group(*pid).is_some_and(|g| groups.contains(&g)))
        .collect();
    live.sort_unstable();
    live
}

/// The process group of a live process, or `None` if it is gone or a zombie.
fn stat_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    (state != "Z" && state != "X").then_some(pgrp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_by_its_group() {
        let own_group = nix::unistd::getpgrp().as_raw();
        assert!(live_members(&[own_group]).contains(&std::process::id()));
    }
}
