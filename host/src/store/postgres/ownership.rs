//! Replicas, their leases and what they own, on PostgreSQL: a claim is serialized across every
//! replica by a transaction-scoped advisory lock per project, and takes the queued row
//! `FOR UPDATE SKIP LOCKED` (a row another transaction holds is being cancelled). The replica rows
//! fence a replica whose lease a peer took as expired: it claims nothing more, and its renewal
//! finds its row gone.

use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};

use super::rows::{self, at};
use crate::store::{Claim, CommandRecord, ReplicaRecord, StoreResult};

/// The first key of PostgreSQL's two-key advisory locks that rdev takes ("rdev" in ASCII), so
/// that its locks never meet another application's on the same database.
const ADVISORY_NAMESPACE: i32 = 0x7264_6576;

/// Takes the transaction-scoped advisory lock named `name`: transactions taking the same name
/// run one after the other, on every replica.
pub(super) async fn advisory_lock(tx: &mut Transaction<'_, Postgres>, name: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))::text")
        .bind(ADVISORY_NAMESPACE)
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// The claim: the advisory lock first, then one statement (so that its snapshot is taken once
/// earlier claims of the project are committed) that takes the next queued row if the owner's row
/// exists and the project has a free slot; then the `command.started` row (with its outbox row).
pub(super) async fn claim_next(conn: &mut PgConnection, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
    let mut tx = conn.begin().await?;
    advisory_lock(&mut tx, &format!("claims:{}", claim.project)).await?;
    let row = sqlx::query(concat!(
        "UPDATE commands SET state = 'running', started_at = $1, owner = $2 WHERE id = \
         (SELECT id FROM commands WHERE project = $3 AND state = 'queued' \
          ORDER BY priority DESC, queue_seq ASC LIMIT 1 FOR UPDATE SKIP LOCKED) \
         AND EXISTS (SELECT 1 FROM replicas WHERE id = $2) \
         AND (SELECT COUNT(*) FROM commands WHERE project = $3 AND state = 'running') < $4 \
         RETURNING ",
        command_columns!()
    ))
    .bind(at(claim.at))
    .bind(&claim.owner)
    .bind(&claim.project)
    .bind(claim.limit)
    .fetch_optional(&mut *tx)
    .await?;
    let claimed = row.as_ref().map(rows::command).transpose()?;
    if let Some(cmd) = &claimed {
        let mut audit = claim.audit.clone();
        audit.target.clone_from(&cmd.id);
        super::audit::insert_audit(&mut tx, &audit).await?;
    }
    tx.commit().await?;
    Ok(claimed)
}

pub(super) async fn orphans(pool: &PgPool) -> StoreResult<Vec<CommandRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE state = 'running' AND \
         (owner IS NULL OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = c.owner)) ORDER BY queue_seq"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::command).collect()
}

pub(super) async fn request_cancel(conn: &mut PgConnection, id: &str, when: i64) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE commands SET cancel_requested_at = $1 WHERE id = $2 AND state = 'running'")
        .bind(at(when))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn cancels_requested(pool: &PgPool, owner: &str) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM commands WHERE state = 'running' AND owner = $1 AND cancel_requested_at IS NOT NULL",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

pub(super) async fn register(conn: &mut PgConnection, replica: &ReplicaRecord) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO replicas (",
        replica_columns!(),
        ") VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(&replica.id)
    .bind(&replica.host)
    .bind(at(replica.started_at))
    .bind(at(replica.heartbeat_at))
    .bind(at(replica.lease_expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn renew(conn: &mut PgConnection, id: &str, when: i64, expires_at: i64) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE replicas SET heartbeat_at = $1, lease_expires_at = $2 WHERE id = $3")
        .bind(at(when))
        .bind(at(expires_at))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn live(pool: &PgPool, now: i64) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM replicas WHERE lease_expires_at >= $1")
        .bind(at(now))
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn expired(pool: &PgPool, now: i64) -> StoreResult<Vec<ReplicaRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        replica_columns!(),
        " FROM replicas WHERE lease_expires_at < $1 ORDER BY started_at"
    ))
    .bind(at(now))
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::replica).collect()
}

pub(super) async fn remove(conn: &mut PgConnection, id: &str, expired_before: Option<i64>) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM replicas WHERE id = $1 AND ($2::timestamptz IS NULL OR lease_expires_at < $2)")
        .bind(id)
        .bind(expired_before.map(at))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
