//! Replicas, their leases and what they own, on SQLite: the claim of a queued command (the one
//! writer makes it atomic), cancels, and the replica rows (one live process per file, under its
//! serving lock; earlier processes' rows are reconciled at start).

use sqlx::{Row, SqliteConnection};

use super::{SqliteStore, command_from_row, writes};
use crate::store::{Claim, CommandRecord, ReplicaRecord, StoreResult};

impl SqliteStore {
    pub(super) async fn claim(&self, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
        let claim = claim.clone();
        self.write(Box::new(move |conn| {
            Box::pin(async move { claim_next(conn, &claim).await })
        }))
        .await
    }

    pub(super) async fn orphans(&self) -> StoreResult<Vec<CommandRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE state = 'running' AND \
             (owner IS NULL OR owner NOT IN (SELECT id FROM replicas)) ORDER BY queue_seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(command_from_row).collect()
    }

    pub(super) async fn ask_cancel(&self, id: &str, at: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let done =
                    sqlx::query("UPDATE commands SET cancel_requested_at = $1 WHERE id = $2 AND state = 'running'")
                        .bind(at)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                Ok(done.rows_affected() == 1)
            })
        }))
        .await
    }

    pub(super) async fn cancels_of(&self, owner: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM commands WHERE state = 'running' AND owner = $1 AND cancel_requested_at IS NOT NULL",
        )
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    pub(super) async fn register(&self, replica: &ReplicaRecord) -> StoreResult<()> {
        let replica = replica.clone();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                sqlx::query(concat!(
                    "INSERT INTO replicas (",
                    replica_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5)"
                ))
                .bind(replica.id)
                .bind(replica.host)
                .bind(replica.started_at)
                .bind(replica.heartbeat_at)
                .bind(replica.lease_expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        }))
        .await
    }

    pub(super) async fn renew(&self, id: &str, at: i64, expires_at: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE replicas SET heartbeat_at = $1, lease_expires_at = $2 WHERE id = $3")
                    .bind(at)
                    .bind(expires_at)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        }))
        .await
    }

    pub(super) async fn expired(&self, now: i64) -> StoreResult<Vec<ReplicaRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            replica_columns!(),
            " FROM replicas WHERE lease_expires_at < $1 ORDER BY started_at"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReplicaRecord {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    lease_expires_at: r.try_get("lease_expires_at")?,
                })
            })
            .collect()
    }

    pub(super) async fn remove(&self, id: &str, expired_before: Option<i64>) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM replicas WHERE id = $1 AND ($2 IS NULL OR lease_expires_at < $2)")
                    .bind(id)
                    .bind(expired_before)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        }))
        .await
    }
}

/// The claim itself. The owner's row is checked inside the transaction: a replica that a peer
/// already took as dead claims nothing, so no command is started by a replica whose commands are
/// being reconciled.
async fn claim_next(conn: &mut SqliteConnection, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
    let live = sqlx::query("SELECT id FROM replicas WHERE id = $1")
        .bind(claim.owner.clone())
        .fetch_optional(&mut *conn)
        .await?;
    let running: i64 = sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE project = $1 AND state = 'running'")
        .bind(claim.project.clone())
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    if live.is_none() || running >= claim.limit {
        return Ok(None);
    }
    let next = concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands WHERE project = $1 AND state = 'queued' \
         ORDER BY priority DESC, queue_seq ASC LIMIT 1"
    );
    let Some(row) = sqlx::query(next)
        .bind(claim.project.clone())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut cmd = command_from_row(&row)?;
    sqlx::query("UPDATE commands SET state = 'running', started_at = $1, owner = $2 WHERE id = $3")
        .bind(claim.at)
        .bind(claim.owner.clone())
        .bind(cmd.id.clone())
        .execute(&mut *conn)
        .await?;
    let mut audit = claim.audit.clone();
    audit.target.clone_from(&cmd.id);
    writes::insert_audit(&mut *conn, &audit).await?;
    cmd.state = crate::store::CommandState::Running;
    cmd.started_at = Some(claim.at);
    cmd.owner = Some(claim.owner.clone());
    Ok(Some(cmd))
}
