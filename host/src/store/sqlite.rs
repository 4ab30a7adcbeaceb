//! The embedded SQLite database: a file created on first start, in WAL mode, checkpointed in
//! the background.

use std::path::Path;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::{SqlStore, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
/// How often the write-ahead log is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The URL of a SQLite file, created if missing.
pub(super) fn url_for(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    format!("sqlite://{}?mode=rwc", absolute.display())
}

pub(super) async fn open(url: &str) -> StoreResult<SqlStore> {
    let pool = connect(url).await?;
    MIGRATIONS.run(&pool).await?;
    let upkeep = tokio::spawn(checkpoints(pool.clone()));
    Ok(SqlStore::with_upkeep(pool, upkeep))
}

async fn connect(url: &str) -> StoreResult<sqlx::AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA busy_timeout = 10000",
                    "PRAGMA foreign_keys = ON",
                    // Left to SQLite, the commit that crosses the WAL's size threshold copies the
                    // log back into the database itself: the slowest request of every few hundred.
                    // `checkpoints` does it instead, off the request path.
                    "PRAGMA wal_autocheckpoint = 0",
                ] {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// Checkpoints the log every [`CHECKPOINT_EVERY`] without waiting for readers or writers
/// (`PASSIVE`); the log restarts from its beginning once a checkpoint caught up with it.
async fn checkpoints(pool: sqlx::AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn write_mib(pool: &sqlx::AnyPool, mib: usize) {
        for _ in 0..mib * 16 {
            sqlx::query("INSERT INTO blobs (data) VALUES ($1)")
                .bind(vec![7u8; 64 * 1024])
                .execute(pool)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let pool = connect(&url_for(&dir.path().join("db.sqlite"))).await.unwrap();
        pool.execute("CREATE TABLE blobs (data BLOB)").await.unwrap();
        let wal_size = || std::fs::metadata(dir.path().join("db.sqlite-wal")).unwrap().len();
        let upkeep = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(checkpoints(pool.clone())));
        write_mib(&pool, 4).await;
        let after_first = wal_size();
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        write_mib(&pool, 4).await;
        assert!(
            wal_size() < after_first + after_first / 2,
            "the log is reused after a checkpoint: {after_first} then {}",
            wal_size()
        );
        drop(upkeep);
    }
}
