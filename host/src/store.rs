//! Persistence contract: API keys, commands and their queue, replicas and their leases, output
//! chunks, the audit log and the webhook outbox. Each database has its own implementation: SQLite
//! ([`SqliteStore`]: one writer with group commit, a bounded log, one process per file) and
//! PostgreSQL ([`PostgresStore`]: its own types, advisory locks and `SKIP LOCKED` for replicas).
//! The same contract suite runs on both.

#[macro_use]
mod columns;
mod errors;
mod postgres;
mod records;
mod retention;
mod settings;
mod sqlite;
mod webhooks;

pub use errors::Fault;
pub use postgres::PostgresStore;
pub use records::*;
pub use retention::RetentionStore;
pub use settings::{DatabaseConfig, SqliteSync};
pub use sqlite::{LockError, ServingLock, SqliteStore};
pub use webhooks::*;

use std::sync::Arc;

use async_trait::async_trait;

/// A storage failure; never shown verbatim to clients. Cloneable, so that one failed group
/// commit can fail every write it carried with the same cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(std::sync::Arc<sqlx::Error>),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(std::sync::Arc<sqlx::migrate::MigrateError>),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// An output file could not be read or written.
    #[error("output file error: {0}")]
    OutputFile(std::sync::Arc<std::io::Error>),
    /// The SQLite file the gateway opened is no longer at its path (deleted or replaced):
    /// writes would go to a file that the next start never sees.
    #[error("the database file {0} was removed or replaced")]
    Vanished(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(std::sync::Arc::new(e))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::OutputFile(std::sync::Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(std::sync::Arc::new(e))
    }
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Outcome of inserting a command that may carry an idempotency key.
#[derive(Debug)]
pub enum Inserted {
    /// The command is new.
    New,
    /// A command with the same key and idempotency key already exists.
    Existing(Box<CommandRecord>),
}

/// Everything the gateway persists.
#[async_trait]
pub trait Store: OutboxStore + RetentionStore + Send + Sync + 'static {
    /// Checks the database the way requests use it: a small write on the write path, then a read
    /// of what was written.
    async fn probe(&self) -> StoreResult<()>;

    /// Stores a new key (only its hash).
    async fn insert_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<()>;
    /// Stores a key only if no key exists yet, atomically across replicas; false if one did.
    async fn insert_first_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<bool>;
    /// One key by id, revoked or not.
    async fn get_key(&self, id: &str) -> StoreResult<Option<KeyRecord>>;
    /// All keys, newest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Number of keys ever created, revoked ones included.
    async fn count_keys(&self) -> StoreResult<i64>;
    /// Marks a key revoked, with its audit row; false (and nothing audited) if it was unknown or
    /// already revoked.
    async fn revoke_key(&self, id: &str, at: i64, audit: Option<&AuditEntry>) -> StoreResult<bool>;
    /// Records that a key was used.
    async fn touch_key(&self, id: &str, at: i64) -> StoreResult<()>;

    /// Inserts a queued command and its audit rows (its acceptance, and the request's own row)
    /// in one transaction; none of the rows when the idempotency key was taken.
    async fn insert_command(&self, cmd: &CommandRecord, audits: &[AuditEntry]) -> StoreResult<Inserted>;
    /// One command by id.
    async fn get_command(&self, id: &str) -> StoreResult<Option<CommandRecord>>;
    /// The command a key submitted with an idempotency key.
    async fn find_idempotent(&self, key_id: &str, idempotency_key: &str) -> StoreResult<Option<CommandRecord>>;
    /// Commands of a project, newest first.
    async fn list_commands(&self, query: &CommandQuery) -> StoreResult<Vec<CommandRecord>>;
    /// The queued command of a project that should start next (priority, then FIFO).
    async fn next_queued(&self, project: &str) -> StoreResult<Option<CommandRecord>>;
    /// How many commands of a project are running.
    async fn count_running(&self, project: &str) -> StoreResult<i64>;
    /// Commands waiting in the queue of a project, or of all projects.
    async fn count_queued(&self, project: Option<&str>) -> StoreResult<i64>;
    /// Projects that have queued commands.
    async fn projects_with_queued(&self) -> StoreResult<Vec<String>>;
    /// Moves a command between states if it is in one of `from`, with its audit event, atomically.
    /// Returns false (and changes nothing) if the command was not in one of those states.
    async fn transition(&self, change: &Transition<'_>) -> StoreResult<bool>;
    /// Remembers the process group of a running command and where it runs (to kill leftovers
    /// after a crash, there and only there).
    async fn set_process_group(&self, id: &str, runner: &str, pgid: i64) -> StoreResult<()>;
    /// Records what a `claude` run reported (its session, when it named one, and the summary
    /// as JSON).
    async fn set_run_summary(&self, id: &str, session_id: Option<&str>, summary: &str) -> StoreResult<()>;
    /// The newest command of `project` that ran in Claude Code session `session_id` (in any
    /// session, when `None`).
    async fn session_command(&self, project: &str, session_id: Option<&str>) -> StoreResult<Option<CommandRecord>>;

    /// Claims the next queued command of a project (priority, then FIFO) for a replica, in one
    /// transaction that never lets the project's running commands exceed the claim's limit,
    /// however many replicas claim at once. None if no slot is free or nothing is queued.
    async fn claim_next(&self, claim: &Claim) -> StoreResult<Option<CommandRecord>>;
    /// Running commands whose owner is no registered replica (it was taken as dead, or the
    /// command is from before replicas were recorded).
    async fn orphaned_commands(&self) -> StoreResult<Vec<CommandRecord>>;
    /// Records a cancel asked for a running command owned elsewhere; false if it is not running.
    async fn request_cancel(&self, id: &str, at: i64) -> StoreResult<bool>;
    /// Ids of running commands of a replica whose cancel was asked.
    async fn cancels_requested(&self, owner: &str) -> StoreResult<Vec<String>>;

    /// Registers a replica with its first lease.
    async fn register_replica(&self, replica: &ReplicaRecord) -> StoreResult<()>;
    /// Renews a replica's lease; false if its row is gone (a peer took it as dead).
    async fn renew_lease(&self, id: &str, at: i64, expires_at: i64) -> StoreResult<bool>;
    /// How many replicas hold a lease that has not expired at `now`.
    async fn live_replicas(&self, now: i64) -> StoreResult<i64>;
    /// Replicas whose lease expired before `now`.
    async fn expired_replicas(&self, now: i64) -> StoreResult<Vec<ReplicaRecord>>;
    /// Removes a replica's row: unconditionally (`expired_before` None, on a clean stop), or only
    /// if its lease expired before that time, so that one peer alone reconciles a dead replica.
    async fn remove_replica(&self, id: &str, expired_before: Option<i64>) -> StoreResult<bool>;

    /// Appends output chunks (sequence numbers assigned by the caller), all or none. The batch
    /// is shared, not copied, on its way to the database's writer. Once it returns, a crash of
    /// the gateway loses none of it; a crash of the machine, at most what was appended in the
    /// last moments (see each store), until [`Store::seal_output`].
    async fn append_output(&self, chunks: Arc<Vec<OutputChunk>>) -> StoreResult<()>;
    /// Makes a command's output durable in full, once no more is appended (before its end is
    /// reported, and when a crashed command is reconciled).
    async fn seal_output(&self, command_id: &str) -> StoreResult<()>;
    /// Output chunks of a command with `seq > after`, in order, at most `limit`.
    async fn output_after(&self, command_id: &str, after: i64, limit: i64) -> StoreResult<Vec<OutputChunk>>;

    /// Appends one audit event.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Audit events matching a query, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
}

/// Opens the database named by `url` (SQLite file or PostgreSQL) with the default settings,
/// creating and migrating it.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    open_with(url, &DatabaseConfig::default()).await
}

/// Opens the database named by `url` with `settings`, creating and migrating it.
pub async fn open_with(url: &str, settings: &DatabaseConfig) -> StoreResult<Arc<dyn Store>> {
    if is_shared(url) {
        Ok(Arc::new(postgres::open(url, settings).await?))
    } else {
        Ok(Arc::new(sqlite::open(url, settings).await?))
    }
}

/// Whether several gateway processes may share the database at `url` (PostgreSQL); a SQLite
/// file has one.
pub fn is_shared(url: &str) -> bool {
    !url.starts_with("sqlite:")
}

/// For a SQLite `url`, the lock that keeps a second gateway process off the same file; PostgreSQL
/// coordinates any number of processes and needs none.
pub fn lock_for_serving(url: &str) -> Result<Option<ServingLock>, LockError> {
    if is_shared(url) {
        Ok(None)
    } else {
        sqlite::lock_for_serving(url).map(Some)
    }
}

/// The SQLite URL of the embedded database in a data directory.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    sqlite::url_for(&data_dir.join("rdev.db"))
}
