//! The store contract on PostgreSQL, for any number of replicas sharing one database, with its
//! own types (`TIMESTAMPTZ`, `JSONB`, `BYTEA`) and coordination (advisory locks, `SKIP LOCKED`;
//! `LISTEN/NOTIFY` lives in `replicas/notices.rs`). Waiting is bounded everywhere: for a
//! connection (the pool's acquire timeout) and for a statement (`statement_timeout`), so an
//! outage answers 503 within seconds instead of sqlx's default 30.

mod audit;
mod commands;
mod keys;
mod ownership;
mod retention;
mod rows;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::{
    AuditEntry, AuditQuery, AuditRecord, Claim, CommandQuery, CommandRecord, DatabaseConfig, Inserted, KeyRecord,
    OutputChunk, ReplicaRecord, Store, StoreResult, Transition,
};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// A connection of its own for lease renewals: a pool exhausted by requests must not make a
    /// live replica look dead to its peers.
    leases: PgPool,
}

pub(super) async fn open(url: &str, settings: &DatabaseConfig) -> StoreResult<PostgresStore> {
    let options =
        PgConnectOptions::from_str(url)?.options([("statement_timeout", settings.statement_timeout_ms.to_string())]);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout())
        .connect_with(options.clone())
        .await?;
    MIGRATIONS.run(&pool).await?;
    let leases = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(settings.acquire_timeout())
        .connect_lazy_with(options);
    Ok(PostgresStore { pool, leases })
}

/// A connection whose write failed is closed instead of going back to the pool: after a failed
/// `COMMIT` its transaction state is unknown.
fn settle<T>(mut conn: PoolConnection<Postgres>, result: StoreResult<T>) -> StoreResult<T> {
    if result.is_err() {
        conn.close_on_drop();
    }
    result
}

/// Runs one write on a connection of `pool` (the store's unless named), settled by [`settle`].
/// Named so as not to shadow `std::write!`.
macro_rules! write_on {
    ($store:expr, |$conn:ident| $body:expr) => {
        write_on!($store.pool, $store, |$conn| $body)
    };
    ($pool:expr, $store:expr, |$conn:ident| $body:expr) => {{
        let mut $conn = $pool.acquire().await?;
        let result = $body.await;
        settle($conn, result)
    }};
}

// After `write_on!`, which it uses.
mod webhooks;

#[async_trait]
impl Store for PostgresStore {
    async fn probe(&self) -> StoreResult<()> {
        write_on!(self, |conn| audit::probe_write(&mut conn, crate::time::now_ms()))?;
        audit::probe_read(&self.pool).await
    }

    async fn insert_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<()> {
        write_on!(self, |conn| keys::insert(&mut conn, key, audit))
    }

    async fn insert_first_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<bool> {
        write_on!(self, |conn| keys::insert_first(&mut conn, key, audit))
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<KeyRecord>> {
        keys::get(&self.pool, id).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        keys::list(&self.pool).await
    }

    async fn count_keys(&self) -> StoreResult<i64> {
        keys::count(&self.pool).await
    }

    async fn revoke_key(&self, id: &str, at: i64, audit: Option<&AuditEntry>) -> StoreResult<bool> {
        write_on!(self, |conn| keys::revoke(&mut conn, id, at, audit))
    }

    async fn touch_key(&self, id: &str, at: i64) -> StoreResult<()> {
        write_on!(self, |conn| keys::touch(&mut conn, id, at))
    }

    async fn insert_command(&self, cmd: &CommandRecord, audits: &[AuditEntry]) -> StoreResult<Inserted> {
        write_on!(self, |conn| commands::insert(&mut conn, cmd, audits))
    }

    async fn get_command(&self, id: &str) -> StoreResult<Option<CommandRecord>> {
        commands::get(&self.pool, id).await
    }

    async fn find_idempotent(&self, key_id: &str, idempotency_key: &str) -> StoreResult<Option<CommandRecord>> {
        commands::find_idempotent(&self.pool, key_id, idempotency_key).await
    }

    async fn list_commands(&self, query: &CommandQuery) -> StoreResult<Vec<CommandRecord>> {
        commands::list(&self.pool, query).await
    }

    async fn next_queued(&self, project: &str) -> StoreResult<Option<CommandRecord>> {
        commands::next_queued(&self.pool, project).await
    }

    async fn count_running(&self, project: &str) -> StoreResult<i64> {
        commands::count_running(&self.pool, project).await
    }

    async fn count_queued(&self, project: Option<&str>) -> StoreResult<i64> {
        commands::count_queued(&self.pool, project).await
    }

    async fn projects_with_queued(&self) -> StoreResult<Vec<String>> {
        commands::projects_with_queued(&self.pool).await
    }

    async fn transition(&self, change: &Transition<'_>) -> StoreResult<bool> {
        write_on!(self, |conn| commands::transition(&mut conn, change))
    }

    async fn set_process_group(&self, id: &str, runner: &str, pgid: i64) -> StoreResult<()> {
        write_on!(self, |conn| commands::set_process_group(&mut conn, id, runner, pgid))
    }

    async fn set_run_summary(&self, id: &str, session_id: Option<&str>, summary: &str) -> StoreResult<()> {
        write_on!(self, |conn| commands::set_run_summary(
            &mut conn, id, session_id, summary
        ))
    }

    async fn session_command(&self, project: &str, session_id: Option<&str>) -> StoreResult<Option<CommandRecord>> {
        commands::session_command(&self.pool, project, session_id).await
    }

    async fn claim_next(&self, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
        write_on!(self, |conn| ownership::claim_next(&mut conn, claim))
    }

    async fn orphaned_commands(&self) -> StoreResult<Vec<CommandRecord>> {
        ownership::orphans(&self.pool).await
    }

    async fn request_cancel(&self, id: &str, at: i64) -> StoreResult<bool> {
        write_on!(self, |conn| ownership::request_cancel(&mut conn, id, at))
    }

    async fn cancels_requested(&self, owner: &str) -> StoreResult<Vec<String>> {
        ownership::cancels_requested(&self.pool, owner).await
    }

    async fn register_replica(&self, replica: &ReplicaRecord) -> StoreResult<()> {
        write_on!(self, |conn| ownership::register(&mut conn, replica))
    }

    async fn renew_lease(&self, id: &str, at: i64, expires_at: i64) -> StoreResult<bool> {
        write_on!(self.leases, self, |conn| ownership::renew(
            &mut conn, id, at, expires_at
        ))
    }

    async fn live_replicas(&self, now: i64) -> StoreResult<i64> {
        ownership::live(&self.pool, now).await
    }

    async fn expired_replicas(&self, now: i64) -> StoreResult<Vec<ReplicaRecord>> {
        ownership::expired(&self.pool, now).await
    }

    async fn remove_replica(&self, id: &str, expired_before: Option<i64>) -> StoreResult<bool> {
        write_on!(self, |conn| ownership::remove(&mut conn, id, expired_before))
    }

    async fn append_output(&self, chunks: Arc<Vec<OutputChunk>>) -> StoreResult<()> {
        write_on!(self, |conn| commands::append_output(&mut conn, &chunks))
    }

    async fn seal_output(&self, _command_id: &str) -> StoreResult<()> {
        // Rows are durable once appended.
        Ok(())
    }

    async fn output_after(&self, command_id: &str, after: i64, limit: i64) -> StoreResult<Vec<OutputChunk>> {
        commands::output_after(&self.pool, command_id, after, limit).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        write_on!(self, |conn| audit::append(&mut conn, entry))
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        audit::list(&self.pool, query).await
    }
}
