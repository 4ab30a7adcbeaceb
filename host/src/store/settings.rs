//! The `[database]` section of the configuration: how long a request may wait for the database
//! before it is answered 503, and how the embedded SQLite file keeps its write-ahead log small.

use std::time::Duration;

use serde::Deserialize;

/// Database timeouts and upkeep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Milliseconds a request waits for a free connection (or for a new one to be opened)
    /// before it is answered 503 `unavailable`.
    pub acquire_timeout_ms: u64,
    /// Milliseconds one statement may run (PostgreSQL `statement_timeout`) or wait for a lock
    /// held by another process (SQLite `busy_timeout`).
    pub statement_timeout_ms: u64,
    /// Connections to PostgreSQL (SQLite uses one writer and a few readers).
    pub max_connections: u32,
    /// Bytes of SQLite write-ahead log past which a checkpoint waits for readers so that the
    /// log can start over; the log itself is truncated to this size when it restarts.
    pub wal_limit_bytes: u64,
    /// When SQLite syncs: `full` (default) syncs every commit, so an acknowledged write survives
    /// a power loss; `normal` syncs at checkpoints only: acknowledged writes survive a crash of
    /// the gateway but the last ones may be lost with the machine, for less latency per write.
    pub sqlite_synchronous: SqliteSync,
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Every commit is synced.
    Full,
    /// Commits are synced at checkpoints.
    Normal,
}

impl SqliteSync {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "PRAGMA synchronous = FULL",
            Self::Normal => "PRAGMA synchronous = NORMAL",
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            acquire_timeout_ms: 3_000,
            statement_timeout_ms: 3_000,
            max_connections: 16,
            wal_limit_bytes: 16 * 1024 * 1024,
            sqlite_synchronous: SqliteSync::Full,
        }
    }
}

impl DatabaseConfig {
    /// Checks the ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(100..=60_000).contains(&self.acquire_timeout_ms) {
            return Err("database.acquire_timeout_ms must be between 100 and 60000".into());
        }
        if !(100..=600_000).contains(&self.statement_timeout_ms) {
            return Err("database.statement_timeout_ms must be between 100 and 600000".into());
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err("database.max_connections must be between 1 and 1000".into());
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.wal_limit_bytes) {
            return Err("database.wal_limit_bytes must be between 1 MiB and 1 GiB".into());
        }
        Ok(())
    }

    /// How long a request waits for a connection.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}
