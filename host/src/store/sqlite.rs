//! The embedded SQLite database: a file created on first start, in WAL mode.

use std::path::Path;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::{SqlStore, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The URL of a SQLite file, created if missing.
pub(super) fn url_for(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    format!("sqlite://{}?mode=rwc", absolute.display())
}

pub(super) async fn open(url: &str) -> StoreResult<SqlStore> {
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA busy_timeout = 10000",
                    "PRAGMA foreign_keys = ON",
                ] {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    MIGRATIONS.run(&pool).await?;
    Ok(SqlStore::new(pool))
}
