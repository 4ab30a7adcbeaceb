//! The embedded SQLite database: a file created on first start, in WAL mode. Writes go through
//! one connection (SQLite has one writer at a time anyway; queueing in the pool is fair and
//! bounded, busy-waiting on the file lock is neither), reads through a few read-only ones. By
//! default every commit is synced (`synchronous = FULL`), so an acknowledged write survives a
//! crash of the machine, and the log is checkpointed in the background and kept small. Command
//! output goes to files of its own beside the database (`output_files`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Executor;
use sqlx::sqlite::SqlitePoolOptions;

mod group_commit;
mod output_files;
mod queries;

pub use queries::SqliteStore;

use group_commit::{GroupCommit, Work};
use output_files::{OutputFiles, OutputLogs};

use super::{DatabaseConfig, StoreError, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
/// How often the write-ahead log is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Read connections: the gateway's reads are short, a few suffice.
const READERS: u32 = 4;

/// The URL of a SQLite file, created if missing.
pub(super) fn url_for(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    format!("sqlite://{}?mode=rwc", absolute.display())
}

/// The file behind a URL (`sqlite://PATH?…`).
fn path_of(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// SQLite's write path: the group-commit queue in front of the writer connection, and the
/// checkpoint task beside it; both stop with the last clone of the store.
#[derive(Debug)]
pub(in crate::store) struct Writer {
    group: GroupCommit,
    _checkpoints: tokio_util::task::AbortOnDropHandle<()>,
}

impl Writer {
    pub(in crate::store) async fn run<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        self.group.run(work).await
    }
}

/// Device and inode of the database file when it was opened. A file deleted or replaced under a
/// running gateway still takes writes through the open handle, and they are gone at the next
/// start: such writes must be refused instead of acknowledged.
#[derive(Debug)]
struct FileIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    fn check(&self) -> StoreResult<()> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => Ok(()),
            _ => Err(StoreError::Vanished(self.path.display().to_string())),
        }
    }
}

/// Held by the one gateway process that serves a SQLite file, for as long as it runs. SQLite keeps
/// the file consistent for any number of processes, but the gateway's queue, slots and recovery
/// assume that they are the only one acting on it (a second one would mark the first one's running
/// commands `interrupted` and overfill the slots). Offline tools (`rdev keys`) do not take it.
#[derive(Debug)]
pub struct ServingLock {
    _file: std::fs::File,
}

/// Why a SQLite file could not be locked for serving.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "another gateway{holder} is serving {database} (lock file {lock}); a SQLite database serves one gateway process, use PostgreSQL for replicas"
    )]
    Held {
        database: String,
        lock: String,
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {lock}: {source}")]
    Io { lock: String, source: std::io::Error },
}

/// Takes the serving lock of the SQLite file behind `url` (`<file>.lock`, with the holder's pid).
pub(super) fn lock_for_serving(url: &str) -> Result<ServingLock, LockError> {
    use std::io::{Read, Seek, Write};
    let database = path_of(url);
    let lock = PathBuf::from(format!("{}.lock", database.display()));
    let io = |source| LockError::Io {
        lock: lock.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::Held {
                database: database.display().to_string(),
                lock: lock.display().to_string(),
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(ServingLock { _file: file })
}

pub(super) async fn open(url: &str, settings: &DatabaseConfig) -> StoreResult<SqliteStore> {
    let busy = format!("PRAGMA busy_timeout = {}", settings.statement_timeout_ms);
    let limit = format!("PRAGMA journal_size_limit = {}", settings.wal_limit_bytes);
    let writer = connect(
        url,
        settings,
        1,
        [
            "PRAGMA journal_mode = WAL".to_owned(),
            settings.sqlite_synchronous.pragma().to_owned(),
            "PRAGMA foreign_keys = ON".to_owned(),
            // Left to SQLite, the commit that crosses the log's size threshold copies the log back
            // into the database itself: the slowest request of every few hundred. `checkpoints`
            // does it instead, off the request path.
            "PRAGMA wal_autocheckpoint = 0".to_owned(),
            limit,
            busy.clone(),
        ],
    )
    .await?;
    MIGRATIONS.run(&writer).await?;
    let readers = connect(
        url,
        settings,
        READERS,
        ["PRAGMA query_only = ON".to_owned(), busy.clone()],
    )
    .await?;
    let path = path_of(url);
    let file = FileIdentity::of(&path).map_err(|e| StoreError::Vanished(format!("{}: {e}", path.display())))?;
    // Checkpoints have a connection of their own: copying the log back into the database takes
    // a sync of its own, and on the writer's connection every write would wait for it.
    let checkpointer = connect(url, settings, 1, [busy]).await?;
    let writes = Arc::new(AtomicU64::new(0));
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let group = GroupCommit::start(writer, Arc::new(file), writes.clone());
    let checkpoints = tokio::spawn(checkpoints(
        Checkpointers {
            passive: checkpointer,
            writer: group.clone(),
        },
        wal,
        settings.wal_limit_bytes,
        writes,
    ));
    let writer = Writer {
        group,
        _checkpoints: tokio_util::task::AbortOnDropHandle::new(checkpoints),
    };
    let output = OutputLogs::start(PathBuf::from(format!("{}.output", path.display())));
    Ok(SqliteStore::new(readers, writer, output))
}

async fn connect<const N: usize>(
    url: &str,
    settings: &DatabaseConfig,
    connections: u32,
    pragmas: [String; N],
) -> StoreResult<sqlx::SqlitePool> {
    let pragmas = Arc::new(pragmas);
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(settings.acquire_timeout())
        .after_connect(move |conn, _| {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                for pragma in pragmas.iter() {
                    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(pragma.clone()))).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// A checkpoint period with at most this many writes counts as idle: replicas renew their lease
/// every heartbeat, which would otherwise keep the log from ever being truncated.
const QUIET_WRITES: u64 = 4;

/// Where checkpoints run: those that wait for no one on a connection of their own (copying the
/// log back syncs the database, and writes need not wait for that), those that make the log start
/// over on the writer's connection between batches.
struct Checkpointers {
    passive: sqlx::SqlitePool,
    writer: GroupCommit,
}

/// Checkpoints the log every [`CHECKPOINT_EVERY`]. Usually without waiting for anyone
/// (`PASSIVE`), which lets the log start over only when no reader is using it: under steady load
/// there always is one, and the log would grow without end. So once it is past `limit` a second
/// checkpoint waits for readers to move on (`RESTART`, bounded by the busy timeout) and the log
/// starts over, reusing its file (kept to `journal_size_limit`); once writes stopped (all but a
/// few), the file is truncated (`TRUNCATE`).
async fn checkpoints(on: Checkpointers, wal: PathBuf, limit: u64, writes: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = 0;
    loop {
        tick.tick().await;
        let written = writes.load(Ordering::Relaxed);
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        let idle = written - seen <= QUIET_WRITES && size > 0;
        seen = written;
        let (mode, result) = if idle {
            (
                "TRUNCATE",
                on.writer.run_exclusive("PRAGMA wal_checkpoint(TRUNCATE)").await,
            )
        } else {
            // Even when the log must start over, most of it is copied back first without holding
            // up writes, so that the restart itself has only the last few frames left to copy.
            let passive = on.passive.execute("PRAGMA wal_checkpoint(PASSIVE)").await;
            match passive.map(drop).map_err(StoreError::from) {
                Ok(()) if size > limit => (
                    "RESTART",
                    on.writer.run_exclusive("PRAGMA wal_checkpoint(RESTART)").await,
                ),
                result => ("PASSIVE", result),
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, mode, "SQLite checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn write_mib(pool: &sqlx::SqlitePool, mib: usize) {
        for _ in 0..mib * 16 {
            sqlx::query("INSERT INTO blobs (data) VALUES ($1)")
                .bind(vec![7u8; 64 * 1024])
                .execute(pool)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background_and_truncated_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let settings = DatabaseConfig::default();
        let pool = connect(
            &url_for(&path),
            &settings,
            1,
            [
                "PRAGMA journal_mode = WAL".to_owned(),
                "PRAGMA wal_autocheckpoint = 0".to_owned(),
            ],
        )
        .await
        .unwrap();
        pool.execute("CREATE TABLE blobs (data BLOB)").await.unwrap();
        let wal = dir.path().join("db.sqlite-wal");
        let wal_size = || std::fs::metadata(&wal).unwrap().len();
        let writes = Arc::new(AtomicU64::new(0));
        let on = Checkpointers {
            passive: pool.clone(),
            writer: GroupCommit::start(pool.clone(), Arc::new(FileIdentity::of(&path).unwrap()), writes.clone()),
        };
        let task = tokio::spawn(checkpoints(on, wal.clone(), 64 << 20, writes.clone()));
        let _upkeep = tokio_util::task::AbortOnDropHandle::new(task);
        write_mib(&pool, 4).await;
        writes.fetch_add(1, Ordering::Relaxed);
        let after_first = wal_size();
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        assert_eq!(wal_size(), 0, "an idle log is truncated");
        write_mib(&pool, 4).await;
        assert!(wal_size() <= after_first + after_first / 2);
    }

    #[test]
    fn finds_the_file_of_a_url() {
        assert_eq!(
            path_of("sqlite:///tmp/x/rdev.db?mode=rwc"),
            PathBuf::from("/tmp/x/rdev.db")
        );
        assert_eq!(path_of("sqlite://relative.db"), PathBuf::from("relative.db"));
    }
}
