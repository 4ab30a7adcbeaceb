//! API keys on PostgreSQL.

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};

use super::audit::insert_audit;
use super::ownership::advisory_lock;
use super::rows::{self, at};
use crate::store::{AuditEntry, KeyRecord, StoreResult};

pub(super) async fn insert(conn: &mut PgConnection, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<()> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    insert_row(&mut tx, key, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores `key` only if no key exists yet; under an advisory lock, so that of replicas
/// bootstrapping one empty database at once, one creates the first admin key.
pub(super) async fn insert_first(
    conn: &mut PgConnection,
    key: &KeyRecord,
    audit: Option<&AuditEntry>,
) -> StoreResult<bool> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    advisory_lock(&mut tx, "first-key").await?;
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if existing == 0 {
        insert_row(&mut tx, key, audit).await?;
    }
    tx.commit().await?;
    Ok(existing == 0)
}

async fn insert_row(
    tx: &mut Transaction<'_, Postgres>,
    key: &KeyRecord,
    audit: Option<&AuditEntry>,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO api_keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&key.id)
    .bind(&key.name)
    .bind(&key.hash)
    .bind(Json(&key.scopes))
    .bind(key.projects.as_ref().map(Json))
    .bind(key.allowed_cidrs.as_ref().map(Json))
    .bind(key.expires_at.map(at))
    .bind(at(key.created_at))
    .bind(key.last_used_at.map(at))
    .bind(key.revoked_at.map(at))
    .bind(&key.rate_limit_tier)
    .execute(&mut **tx)
    .await?;
    if let Some(entry) = audit {
        insert_audit(tx, entry).await?;
    }
    Ok(())
}

pub(super) async fn get(pool: &PgPool, id: &str) -> StoreResult<Option<KeyRecord>> {
    let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::key).transpose()
}

pub(super) async fn list(pool: &PgPool) -> StoreResult<Vec<KeyRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys ORDER BY created_at DESC, id"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::key).collect()
}

pub(super) async fn count(pool: &PgPool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn revoke(
    conn: &mut PgConnection,
    id: &str,
    when: i64,
    audit: Option<&AuditEntry>,
) -> StoreResult<bool> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at(when))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let revoked = done.rows_affected() == 1;
    if let Some(entry) = audit.filter(|_| revoked) {
        insert_audit(&mut tx, entry).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

pub(super) async fn touch(conn: &mut PgConnection, id: &str, when: i64) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(at(when))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
