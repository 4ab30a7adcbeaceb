//! PostgreSQL, for several replicas sharing one database. Waiting is bounded everywhere: for a
//! connection (the pool's acquire timeout) and for a statement (`statement_timeout`), so an
//! outage answers 503 within seconds instead of sqlx's default 30.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::{DatabaseConfig, SqlStore, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub(super) async fn open(url: &str, settings: &DatabaseConfig) -> StoreResult<SqlStore> {
    let timeout = format!("SET statement_timeout = {}", settings.statement_timeout_ms);
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout())
        .after_connect(move |conn, _| {
            let timeout = timeout.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(timeout))).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    MIGRATIONS.run(&pool).await?;
    Ok(SqlStore::postgres(pool))
}
