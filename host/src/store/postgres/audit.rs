//! The audit log and the readiness probe on PostgreSQL.

use sqlx::{PgConnection, PgPool, Row};

use super::rows::{self, at};
use crate::store::{AuditEntry, AuditQuery, AuditRecord, StoreResult};

/// Bytes the readiness probe writes: enough to need new pages in the log, as real writes do.
const PROBE_BYTES: usize = 16 * 1024;

/// Appends an audit row and, if it is a webhook event, its outbox row, on the caller's
/// connection (and so in the caller's transaction).
pub(super) async fn insert_audit(conn: &mut PgConnection, entry: &AuditEntry) -> StoreResult<()> {
    let row = sqlx::query(
        "INSERT INTO audit_events (at, key_id, client_ip, action, target, outcome, request_id, trace_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(at(entry.at))
    .bind(&entry.key_id)
    .bind(&entry.client_ip)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.outcome)
    .bind(&entry.request_id)
    .bind(&entry.trace_id)
    .bind(&entry.detail)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(tag) = &entry.event {
        super::webhooks::record_event(conn, row.try_get("id")?, entry.at, tag).await?;
    }
    Ok(())
}

/// Appends one audit row (and its outbox row) in a transaction of its own.
pub(super) async fn append(conn: &mut PgConnection, entry: &AuditEntry) -> StoreResult<()> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    insert_audit(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &PgPool, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE ($1::text IS NULL OR key_id = $1) \
         AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3) \
         AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) \
         AND ($6::bigint IS NULL OR id < $6) \
         ORDER BY id DESC LIMIT $7"
    ))
    .bind(&q.key_id)
    .bind(&q.action)
    .bind(&q.target)
    .bind(q.since.map(at))
    .bind(q.until.map(at))
    .bind(q.before)
    .bind(q.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::audit).collect()
}

/// The readiness probe's write: one row, rewritten with the time.
pub(super) async fn probe_write(conn: &mut PgConnection, when: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO readiness_probe (id, at, pad) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
    )
    .bind(at(when))
    .bind(vec![0u8; PROBE_BYTES])
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn probe_read(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("SELECT at FROM readiness_probe WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(())
}
