//! PostgreSQL, for several replicas sharing one database.

use sqlx::any::AnyPoolOptions;

use super::{SqlStore, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub(super) async fn open(url: &str) -> StoreResult<SqlStore> {
    let pool = AnyPoolOptions::new().max_connections(16).connect(url).await?;
    MIGRATIONS.run(&pool).await?;
    Ok(SqlStore::new(pool))
}
