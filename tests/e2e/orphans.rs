//! No process of a local command outlives the gateway, even a gateway killed without warning:
//! its guardian process kills what is left. Start-up reaping of leftovers stays as a second line.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Db, Gateway, process_alive, read_pid, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);
/// How long the guardian may take on a loaded machine; it needs no more than a few ms.
const GUARDIAN_BOUND: Duration = Duration::from_secs(5);

/// `(pid, ppid, pgid)` of a live process, from `/proc/<pid>/stat` (the command name may hold
/// spaces and parentheses, so parse after the last `)`).
fn stat(pid: i32) -> Option<(i32, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (fields.first() != Some(&"Z")).then_some(())?;
    Some((pid, fields.get(1)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

fn live_processes() -> Vec<(i32, i32, i32)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Live processes of a process group.
fn members_of(pgid: i32) -> Vec<i32> {
    live_processes()
        .into_iter()
        .filter(|&(_, _, g)| g == pgid)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The gateway's guardian: its child running `rdev __reaper`.
fn guardian_of(gateway: i32) -> Option<i32> {
    live_processes()
        .into_iter()
        .filter(|&(_, ppid, _)| ppid == gateway)
        .map(|(pid, _, _)| pid)
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == b"__reaper"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_of_a_command_outlives_a_killed_gateway() {
    let mut gw = Gateway::start(Db::Sqlite, "").await;
    let demo = gw.workspaces().join("demo");
    gw.shell("demo", "echo $$ > leader.pid; sleep 300 & sleep 300; :").await;
    let pgid = read_pid(&demo.join("leader.pid")).await;
    wait_until(DEADLINE, || async { members_of(pgid).len() >= 3 }).await;
    let gateway = gw.pid().unwrap();
    let guardian = guardian_of(gateway);
    let group_of = |pid| stat(pid).map(|(_, _, g)| g);
    let gateway_group = group_of(gateway);

    gw.kill();
    wait_until(GUARDIAN_BOUND, || async { members_of(pgid).is_empty() }).await;
    let guardian = guardian.expect("the gateway had a guardian process");
    assert_ne!(
        group_of(guardian),
        gateway_group,
        "a terminal's Ctrl-C must not reach the guardian"
    );
    wait_until(GUARDIAN_BOUND, || async { !process_alive(guardian) }).await;
}

/// A process group of the test's own, standing in for a leftover the gateway knows only from
/// the database (the guardian never heard of it).
fn foreign_group() -> std::process::Child {
    Command::new("sleep")
        .arg("300")
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// The runner identity of the local backend on this host and boot.
fn this_host() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap().trim().to_owned();
    format!(
        "local:{}:{}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// Points a command's recorded process group at `pgid`, as if the gateway had died before its
/// guardian could act, as recorded by `runner` (the gateway may not have recorded its own yet).
async fn record_leftover(gw: &Gateway, id: &str, pgid: u32, runner: &str) {
    let pool = gw.sqlite().await;
    let moved = sqlx::query("UPDATE commands SET pgid = $1, runner = $2 WHERE id = $3")
        .bind(i64::from(pgid))
        .bind(runner)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_recorded_here_are_still_reaped_at_start_up() {
    let mut gw = Gateway::start(Db::Sqlite, "").await;
    let id = gw.shell("demo", "echo $$ > leader.pid; sleep 300").await;
    read_pid(&gw.workspaces().join("demo/leader.pid")).await;
    let mut leftover = foreign_group();
    gw.kill();
    record_leftover(&gw, &id, leftover.id(), &this_host()).await;
    gw.restart();
    assert_eq!(gw.command(&id).await["state"], "interrupted");
    wait_until(DEADLINE, || {
        let reaped = leftover.try_wait().unwrap().is_some();
        async move { reaped }
    })
    .await;
}

/// A process group recorded by another host (or an earlier boot) is never killed: its number
/// names some unrelated process here. The command is still marked interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_recorded_elsewhere_are_not_killed() {
    let mut gw = Gateway::start(Db::Sqlite, "").await;
    let id = gw.shell("demo", "echo $$ > leader.pid; sleep 300").await;
    read_pid(&gw.workspaces().join("demo/leader.pid")).await;
    let mut unrelated = foreign_group();
    gw.kill();
    record_leftover(&gw, &id, unrelated.id(), "local:another-host:another-boot").await;
    gw.restart();
    assert_eq!(gw.command(&id).await["state"], "interrupted");
    let alive = unrelated.try_wait().unwrap().is_none();
    let _ = unrelated.kill();
    let _ = unrelated.wait();
    assert!(alive, "a process group recorded elsewhere must not be killed");
}
