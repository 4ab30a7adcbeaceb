//! The store's writes, each on the connection it is given (the caller decides which connection
//! and what becomes of it when the write fails). They run inside the writer's group-commit
//! transaction, which makes a write's statements atomic; those of the command path open no
//! savepoint of their own.

use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};

use super::{command_from_row, to_json};
use crate::store::{AuditEntry, CommandRecord, CommandState, Inserted, KeyRecord, StoreResult, Transition};

/// Bytes the readiness probe writes: enough to need new pages in the log, as real writes do.
const PROBE_BYTES: usize = 16 * 1024;

/// The readiness probe's write: one row, rewritten with the time.
pub(super) async fn probe(conn: &mut SqliteConnection, at: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO readiness_probe (id, at, pad) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
    )
    .bind(at)
    .bind(vec![0u8; PROBE_BYTES])
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_key(
    conn: &mut SqliteConnection,
    key: &KeyRecord,
    audit: Option<&AuditEntry>,
) -> StoreResult<()> {
    let mut tx = conn.begin().await?;
    insert_key_row(&mut tx, key, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores `key` only if no key exists yet (the one writer makes the check and the insert atomic).
pub(super) async fn insert_first_key(
    conn: &mut SqliteConnection,
    key: &KeyRecord,
    audit: Option<&AuditEntry>,
) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if existing == 0 {
        insert_key_row(&mut tx, key, audit).await?;
    }
    tx.commit().await?;
    Ok(existing == 0)
}

async fn insert_key_row(
    tx: &mut Transaction<'_, Sqlite>,
    key: &KeyRecord,
    audit: Option<&AuditEntry>,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO api_keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(key.id.clone())
    .bind(key.name.clone())
    .bind(key.hash.clone())
    .bind(to_json(&key.scopes))
    .bind(key.projects.as_ref().map(to_json))
    .bind(key.allowed_cidrs.as_ref().map(to_json))
    .bind(key.expires_at)
    .bind(key.created_at)
    .bind(key.last_used_at)
    .bind(key.revoked_at)
    .bind(key.rate_limit_tier.clone())
    .execute(&mut **tx)
    .await?;
    if let Some(entry) = audit {
        insert_audit(tx, entry).await?;
    }
    Ok(())
}

pub(super) async fn revoke_key(
    conn: &mut SqliteConnection,
    id: &str,
    at: i64,
    audit: Option<&AuditEntry>,
) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
    let revoked = done.rows_affected() == 1;
    if let Some(entry) = audit.filter(|_| revoked) {
        insert_audit(&mut tx, entry).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

pub(super) async fn touch_key(conn: &mut SqliteConnection, id: &str, at: i64) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn insert_command(
    conn: &mut SqliteConnection,
    cmd: &CommandRecord,
    audits: &[AuditEntry],
) -> StoreResult<Inserted> {
    let done = sqlx::query(concat!(
        "INSERT INTO commands (",
        command_insert_columns!(),
        ") \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (key_id, idempotency_key) DO NOTHING"
    ))
    .bind(cmd.id.clone())
    .bind(cmd.project.clone())
    .bind(cmd.kind.clone())
    .bind(cmd.spec.clone())
    .bind(cmd.state.as_str())
    .bind(cmd.priority)
    .bind(cmd.timeout_secs)
    .bind(cmd.exit_code)
    .bind(cmd.reason.clone())
    .bind(cmd.key_id.clone())
    .bind(cmd.idempotency_key.clone())
    .bind(cmd.request_hash.clone())
    .bind(cmd.queue_seq)
    .bind(cmd.pgid)
    .bind(cmd.runner.clone())
    .bind(cmd.created_at)
    .bind(cmd.started_at)
    .bind(cmd.finished_at)
    .bind(cmd.session_id.clone())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        let row = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE key_id = $1 AND idempotency_key = $2"
        ))
        .bind(cmd.key_id.clone())
        .bind(cmd.idempotency_key.clone())
        .fetch_one(&mut *conn)
        .await?;
        return Ok(Inserted::Existing(Box::new(command_from_row(&row)?)));
    }
    for audit in audits {
        insert_audit(&mut *conn, audit).await?;
    }
    Ok(Inserted::New)
}

pub(super) async fn transition(conn: &mut SqliteConnection, change: &Transition<'_>) -> StoreResult<bool> {
    let from = change
        .from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let started = (change.to == CommandState::Running).then_some(change.at);
    let finished = change.to.is_terminal().then_some(change.at);
    // `from` holds only our own state names, never client input.
    let update = format!(
        "UPDATE commands SET state = $1, exit_code = COALESCE($2, exit_code), reason = COALESCE($3, reason), \
         started_at = COALESCE($4, started_at), finished_at = COALESCE($5, finished_at) \
         WHERE id = $6 AND state IN ({from})"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(change.to.as_str())
        .bind(change.exit_code)
        .bind(change.reason.map(str::to_owned))
        .bind(started)
        .bind(finished)
        .bind(change.id.to_owned())
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    insert_audit(&mut *conn, &change.audit).await?;
    Ok(true)
}

pub(super) async fn set_process_group(
    conn: &mut SqliteConnection,
    id: &str,
    runner: &str,
    pgid: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE commands SET pgid = $1, runner = $2 WHERE id = $3")
        .bind(pgid)
        .bind(runner.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn set_run_summary(
    conn: &mut SqliteConnection,
    id: &str,
    session_id: Option<&str>,
    summary: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE commands SET session_id = COALESCE($1, session_id), run_summary = $2 WHERE id = $3")
        .bind(session_id.map(str::to_owned))
        .bind(summary.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the size of a sealed output file on its command, for retention.
pub(super) async fn set_output_file_bytes(conn: &mut SqliteConnection, id: &str, bytes: u64) -> StoreResult<()> {
    sqlx::query("UPDATE commands SET output_file_bytes = $1 WHERE id = $2")
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn append_audit(conn: &mut SqliteConnection, entry: &AuditEntry) -> StoreResult<()> {
    insert_audit(&mut *conn, entry).await?;
    Ok(())
}

/// Appends an audit row and, if it is a webhook event, its outbox row, on the caller's
/// connection (and so in the caller's transaction).
pub(super) async fn insert_audit(conn: &mut SqliteConnection, entry: &AuditEntry) -> StoreResult<()> {
    let row = sqlx::query(
        "INSERT INTO audit_events (at, key_id, client_ip, action, target, outcome, request_id, trace_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(entry.at)
    .bind(entry.key_id.clone())
    .bind(entry.client_ip.clone())
    .bind(entry.action.clone())
    .bind(entry.target.clone())
    .bind(entry.outcome.clone())
    .bind(entry.request_id.clone())
    .bind(entry.trace_id.clone())
    .bind(entry.detail.clone())
    .fetch_one(&mut *conn)
    .await?;
    if let Some(tag) = &entry.event {
        super::webhooks::record_event(conn, row.try_get("id")?, entry.at, tag).await?;
    }
    Ok(())
}
