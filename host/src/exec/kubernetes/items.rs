//! Claude configuration items in a pod's workspace, through exec of one small script
//! (`scripts/items.sh`) that applies the local backend's rules; content travels on stdin and
//! answers are collected whole.

use std::time::Duration;

use tokio::sync::mpsc;

use super::channel::{self, End};
use super::channel::{exit_code, message};
use super::cluster::Cluster;
use super::session::lost_reason;
use super::target::Target;
use crate::claude_items::{ItemKind, ItemSummary, MAX_ITEM_BYTES};
use crate::exec::ExecError;

const ITEMS: &str = include_str!("scripts/items.sh");
/// A listing line is about 90 bytes; this bounds a listing at many thousands of items.
const MAX_LISTING_BYTES: u64 = 4 * 1024 * 1024;

async fn run(
    cluster: &Cluster,
    target: &Target,
    args: &[&str],
    stdin: Option<&[u8]>,
    limit: u64,
) -> Result<Collected, ExecError> {
    let mut argv: Vec<String> = ["sh", "-c", ITEMS, "rdev-items"].map(String::from).to_vec();
    argv.extend(args.iter().map(|a| a.to_string()));
    let done = collect(cluster, target, argv, stdin, limit).await?;
    match done.code {
        0 => Ok(done),
        3 => Err(ExecError::Unsafe(done.stderr)),
        4 => Err(ExecError::NotFound),
        _ if done.stderr.is_empty() => Err(ExecError::Remote(format!(
            "the item operation failed in pod {} (exit status {})",
            target.pod, done.code
        ))),
        _ => Err(ExecError::Remote(format!("pod {}: {}", target.pod, done.stderr))),
    }
}

/// Items of a kind, by name.
pub async fn list(cluster: &Cluster, target: &Target, kind: ItemKind) -> Result<Vec<ItemSummary>, ExecError> {
    let done = run(
        cluster,
        target,
        &["list", &target.workspace, kind.as_str()],
        None,
        MAX_LISTING_BYTES,
    )
    .await?;
    let mut items: Vec<ItemSummary> = String::from_utf8_lossy(&done.stdout)
        .lines()
        .filter_map(parse_listing_line)
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

/// `SIZE MTIME FILE.md` (MTIME in epoch seconds, or `-`); lines naming invalid items are skipped.
fn parse_listing_line(line: &str) -> Option<ItemSummary> {
    let mut fields = line.splitn(3, ' ');
    let size = fields.next()?.parse().ok()?;
    let modified = fields
        .next()?
        .parse::<u64>()
        .ok()
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let name = fields.next()?.strip_suffix(".md")?;
    crate::claude_items::is_valid_item_name(name).then(|| ItemSummary::new(name, size, modified))
}

/// One item's content.
pub async fn read(cluster: &Cluster, target: &Target, kind: ItemKind, name: &str) -> Result<String, ExecError> {
    let args = ["read", &target.workspace, kind.as_str(), name];
    // Files written by other means may exceed the write limit; read a generous multiple.
    let done = run(cluster, target, &args, None, 16 * MAX_ITEM_BYTES as u64).await?;
    Ok(String::from_utf8_lossy(&done.stdout).into_owned())
}

/// Creates or replaces an item; true if it was created.
pub async fn write(
    cluster: &Cluster,
    target: &Target,
    kind: ItemKind,
    name: &str,
    content: &str,
) -> Result<bool, ExecError> {
    let size = content.len().to_string();
    let args = ["write", &target.workspace, kind.as_str(), name, &size];
    let done = run(cluster, target, &args, Some(content.as_bytes()), 16).await?;
    Ok(done.stdout.starts_with(b"1"))
}

/// Deletes an item.
pub async fn delete(cluster: &Cluster, target: &Target, kind: ItemKind, name: &str) -> Result<(), ExecError> {
    run(
        cluster,
        target,
        &["delete", &target.workspace, kind.as_str(), name],
        None,
        0,
    )
    .await?;
    Ok(())
}

/// An exec whose whole output was collected.
struct Collected {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `argv` in the target's pod with optional stdin, collecting at most `limit` bytes of
/// stdout, within the API timeout.
async fn collect(
    cluster: &Cluster,
    target: &Target,
    argv: Vec<String>,
    stdin: Option<&[u8]>,
    limit: u64,
) -> Result<Collected, ExecError> {
    let mut session = channel::open(cluster, target, argv, stdin.map(<[u8]>::to_vec)).await?;
    let (stdout, stderr) = session.streams();
    let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
    let run = async {
        tokio::join!(
            gather(stdout, limit_bytes.saturating_add(1)),
            gather(stderr, 64 * 1024),
            session.end()
        )
    };
    let limit_time = Duration::from_secs(cluster.settings().api_timeout_secs);
    let Ok((stdout, stderr, end)) = tokio::time::timeout(limit_time, run).await else {
        return Err(ExecError::Remote(format!("exec in pod {} timed out", target.pod)));
    };
    if stdout.len() > limit_bytes {
        return Err(ExecError::Remote(format!(
            "pod {} answered more than {limit} bytes",
            target.pod
        )));
    }
    let status = match end {
        End::Status(status) => status,
        End::Closed => {
            return Err(ExecError::Remote(format!(
                "the exec in pod {} ended without a status",
                target.pod
            )));
        }
        End::Broken(e) => return Err(ExecError::Remote(format!("exec in pod {} failed: {e}", target.pod))),
        End::Lost(silent) => return Err(ExecError::Unavailable(lost_reason(&target.pod, silent))),
    };
    let code = exit_code(&status).ok_or_else(|| ExecError::Remote(message(&status)))?;
    Ok(Collected {
        code,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
    })
}

/// A stream's chunks up to `limit` bytes; the rest is left to the session to discard, so that
/// a long answer never holds back the status behind it.
async fn gather(mut chunks: mpsc::Receiver<Vec<u8>>, limit: usize) -> Vec<u8> {
    let mut all = Vec::new();
    while all.len() < limit {
        match chunks.recv().await {
            Some(chunk) => all.extend_from_slice(&chunk),
            None => break,
        }
    }
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_lines_are_parsed_and_invalid_names_skipped() {
        let item = parse_listing_line("12 1700000000 review.md").unwrap();
        assert_eq!((item.name.as_str(), item.size), ("review", 12));
        assert!(item.modified_at.unwrap().starts_with("2023-11-14T22:13:20"));
        assert_eq!(parse_listing_line("3 - plain.md").unwrap().modified_at, None);
        for bad in ["12 1 .hidden.md", "x 1 a.md", "12 1 notes.txt", "12 1 a b.md", ""] {
            assert!(parse_listing_line(bad).is_none(), "{bad}");
        }
    }
}
