//! Local backend: projects are directories, commands are child processes in their own process
//! group with a minimal environment; Claude items are files under `<workspace>/.claude`. Each
//! group is registered with the [`guardian`] (when `rdev serve` started one), so that none
//! outlives the gateway even when it is killed without warning.

pub mod guardian;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use self::guardian::{Guardian, Registration};
use super::{ExecBackend, ExecError, Execution, ExitOutcome, Invocation, StreamKind};
use crate::claude_items::{ItemKind, ItemSummary};
use crate::projects::Project;

const READ_BUFFER: usize = 64 * 1024;

/// Runs commands as local processes.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    workspaces: PathBuf,
    identity: String,
    guardian: Option<Arc<Guardian>>,
}

impl LocalBackend {
    /// A backend whose projects live under `workspaces`.
    pub fn new(workspaces: PathBuf) -> Self {
        Self {
            workspaces,
            identity: host_identity(),
            guardian: None,
        }
    }

    /// Registers every command's process group with `guardian` (none: only the start-up reaping
    /// of leftovers catches what a crash left running).
    pub fn guarded_by(self, guardian: Option<Arc<Guardian>>) -> Self {
        Self { guardian, ..self }
    }
}

/// `local:<hostname>:<boot id>`: process group numbers mean something only on this host during
/// this boot.
fn host_identity() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    format!("local:{host}:{}", boot.trim())
}

struct LocalExecution {
    child: Child,
    pgid: Option<i64>,
    output: Option<mpsc::Receiver<(StreamKind, Vec<u8>)>>,
    /// Dropped after the runner's final kill of the group, which is when the group is gone.
    _guarded: Option<Registration>,
}

fn kill_group(pgid: i64) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn pump(
    mut reader: impl AsyncRead + Unpin + Send + 'static,
    kind: StreamKind,
    tx: mpsc::Sender<(StreamKind, Vec<u8>)>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((kind, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[async_trait]
impl Execution for LocalExecution {
    fn process_group(&self) -> Option<i64> {
        self.pgid
    }

    fn take_output(&mut self) -> mpsc::Receiver<(StreamKind, Vec<u8>)> {
        self.output.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    async fn wait(&mut self) -> std::io::Result<ExitOutcome> {
        let status = self.child.wait().await?;
        let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1);
        Ok(ExitOutcome { code })
    }

    async fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            kill_group(pgid);
        }
        let _ = self.child.start_kill();
    }
}

/// Refuses to follow a symlink where the layout expects a real directory or file.
async fn ensure_not_symlink(path: &Path) -> Result<(), ExecError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.file_type().is_symlink() => Err(ExecError::Unsafe(format!(
            "{} is a symbolic link",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

async fn items_dir(project: &Project, kind: ItemKind) -> Result<PathBuf, ExecError> {
    let claude = project.workspace.join(".claude");
    ensure_not_symlink(&claude).await?;
    let dir = claude.join(kind.as_str());
    ensure_not_symlink(&dir).await?;
    Ok(dir)
}

async fn item_path(project: &Project, kind: ItemKind, name: &str) -> Result<PathBuf, ExecError> {
    let path = items_dir(project, kind).await?.join(format!("{name}.md"));
    ensure_not_symlink(&path).await?;
    Ok(path)
}

fn not_found_as(e: std::io::Error) -> ExecError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ExecError::NotFound
    } else {
        ExecError::Io(e)
    }
}

/// The program to start, looked up on the command's own `PATH` (the request's, else the
/// inherited one) from its workspace. Given a path, the standard library starts the process with
/// `posix_spawn`, which shares the gateway's memory until `exec`; given a bare name and a `PATH`
/// of the child's own, it forks to search that `PATH` in the child, and forking copies the page
/// tables of the whole gateway (milliseconds for a large one, on the accept path's core).
fn program_path(inv: &Invocation, workspace: &Path) -> PathBuf {
    if inv.program.contains('/') {
        return PathBuf::from(&inv.program);
    }
    let path = inv.env.get("PATH").or_else(|| inv.inherited.get("PATH"));
    path.and_then(|path| which::which_in(&inv.program, Some(path), workspace).ok())
        .unwrap_or_else(|| PathBuf::from(&inv.program))
}

#[async_trait]
impl ExecBackend for LocalBackend {
    async fn ready(&self) -> Result<(), String> {
        match tokio::fs::metadata(&self.workspaces).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(format!("{} is not a directory", self.workspaces.display())),
            Err(e) => Err(format!("{}: {e}", self.workspaces.display())),
        }
    }

    async fn start(&self, project: &Project, inv: &Invocation) -> Result<Box<dyn Execution>, ExecError> {
        let mut child = Command::new(program_path(inv, &project.workspace))
            .args(&inv.args)
            .current_dir(&project.workspace)
            .env_clear()
            .envs(&inv.inherited)
            .envs(&inv.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ExecError::Spawn {
                program: inv.program.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(256);
        if let Some(out) = child.stdout.take() {
            pump(out, StreamKind::Stdout, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            pump(err, StreamKind::Stderr, tx);
        }
        let pgid = child.id().map(i64::from);
        let guarded = match (&self.guardian, child.id().and_then(|id| i32::try_from(id).ok())) {
            (Some(guardian), Some(pgid)) => Some(guardian.register(pgid)),
            _ => None,
        };
        Ok(Box::new(LocalExecution {
            child,
            pgid,
            output: Some(rx),
            _guarded: guarded,
        }))
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    async fn kill_leftover(&self, runner: &str, pgid: i64) {
        if runner == self.identity {
            kill_group(pgid);
        } else {
            tracing::warn!(
                pgid,
                runner,
                "not killing a process group started on another host or boot"
            );
        }
    }

    async fn list_items(&self, project: &Project, kind: ItemKind) -> Result<Vec<ItemSummary>, ExecError> {
        let dir = items_dir(project, kind).await?;
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut items = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file_name.strip_suffix(".md") else {
                continue;
            };
            let meta = entry.metadata().await?;
            if !meta.is_file() || !crate::claude_items::is_valid_item_name(name) {
                continue;
            }
            items.push(ItemSummary::new(name, meta.len(), meta.modified().ok()));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    async fn read_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<String, ExecError> {
        let path = item_path(project, kind, name).await?;
        let bytes = tokio::fs::read(&path).await.map_err(not_found_as)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn write_item(
        &self,
        project: &Project,
        kind: ItemKind,
        name: &str,
        content: &str,
    ) -> Result<bool, ExecError> {
        let dir = items_dir(project, kind).await?;
        tokio::fs::create_dir_all(&dir).await?;
        let path = item_path(project, kind, name).await?;
        let created = !tokio::fs::try_exists(&path).await?;
        let staging = dir.join(format!(".{name}.md.tmp"));
        tokio::fs::write(&staging, content).await?;
        tokio::fs::rename(&staging, &path).await?;
        Ok(created)
    }

    async fn delete_item(&self, project: &Project, kind: ItemKind, name: &str) -> Result<(), ExecError> {
        let path = item_path(project, kind, name).await?;
        tokio::fs::remove_file(&path).await.map_err(not_found_as)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn invocation(program: &str, path: Option<&str>, inherited_path: Option<&str>) -> Invocation {
        let env = |p: Option<&str>| p.map(|p| ("PATH".to_owned(), p.to_owned())).into_iter().collect();
        Invocation {
            command_id: "c".into(),
            program: program.into(),
            args: Vec::new(),
            env: env(path),
            inherited: env(inherited_path),
        }
    }

    #[test]
    fn programs_are_found_on_the_commands_own_path() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, theirs) = (dir.path().join("mine"), dir.path().join("theirs"));
        for bin in [&mine, &theirs] {
            std::fs::create_dir(bin).unwrap();
            let tool = bin.join("tool");
            std::fs::write(&tool, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (mine_s, theirs_s) = (mine.to_str().unwrap(), theirs.to_str().unwrap());
        let cwd = dir.path();
        assert_eq!(
            program_path(&invocation("tool", Some(mine_s), Some(theirs_s)), cwd),
            mine.join("tool")
        );
        assert_eq!(
            program_path(&invocation("tool", None, Some(theirs_s)), cwd),
            theirs.join("tool")
        );
        // Not found, or no PATH: the name as given, for the spawn to report.
        assert_eq!(
            program_path(&invocation("absent", Some(mine_s), None), cwd),
            PathBuf::from("absent")
        );
        assert_eq!(
            program_path(&invocation("tool", None, None), cwd),
            PathBuf::from("tool")
        );
        assert_eq!(
            program_path(&invocation("./tool", Some(mine_s), None), cwd),
            PathBuf::from("./tool")
        );
    }
}
