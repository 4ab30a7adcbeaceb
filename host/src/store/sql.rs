//! The store over SQL, shared by SQLite and PostgreSQL through sqlx's `Any` driver. The SQL here
//! is the common dialect of both (`$n` parameters, `ON CONFLICT`, `RETURNING`).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{
    AuditEntry, AuditQuery, AuditRecord, CommandQuery, CommandRecord, CommandState, Inserted, KeyRecord, OutputChunk,
    Store, StoreError, StoreResult, Transition,
};

/// A [`Store`] on a pool of SQLite or PostgreSQL connections.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Database upkeep running beside the store (SQLite's checkpoints); stops with the last clone.
    _upkeep: Option<std::sync::Arc<tokio_util::task::AbortOnDropHandle<()>>>,
}

// Column lists as macros so that queries stay `&'static str` (sqlx audits dynamic SQL).
macro_rules! command_columns {
    () => {
        "id, project, kind, spec, state, priority, timeout_secs, exit_code, reason, key_id, \
         idempotency_key, request_hash, queue_seq, pgid, runner, created_at, started_at, finished_at"
    };
}
macro_rules! key_columns {
    () => {
        "id, name, hash, scopes, projects, allowed_cidrs, expires_at, created_at, last_used_at, revoked_at"
    };
}
macro_rules! audit_columns {
    () => {
        "id, at, key_id, client_ip, action, target, outcome, request_id, detail"
    };
}

impl SqlStore {
    pub(super) fn new(pool: AnyPool) -> Self {
        Self { pool, _upkeep: None }
    }

    /// A store whose database needs `upkeep` running beside it.
    pub(super) fn with_upkeep(pool: AnyPool, upkeep: tokio::task::JoinHandle<()>) -> Self {
        let upkeep = tokio_util::task::AbortOnDropHandle::new(upkeep);
        Self {
            pool,
            _upkeep: Some(std::sync::Arc::new(upkeep)),
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(text: Option<String>) -> StoreResult<Option<T>> {
    text.map(|t| serde_json::from_str(&t).map_err(corrupt)).transpose()
}

fn key_from_row(row: &AnyRow) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        scopes: from_json(Some(row.try_get("scopes")?))?.unwrap_or_default(),
        projects: from_json(row.try_get("projects")?)?,
        allowed_cidrs: from_json(row.try_get("allowed_cidrs")?)?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn command_from_row(row: &AnyRow) -> StoreResult<CommandRecord> {
    let state: String = row.try_get("state")?;
    Ok(CommandRecord {
        id: row.try_get("id")?,
        project: row.try_get("project")?,
        kind: row.try_get("kind")?,
        spec: row.try_get("spec")?,
        state: state.parse().map_err(corrupt)?,
        priority: row.try_get("priority")?,
        timeout_secs: row.try_get("timeout_secs")?,
        exit_code: row.try_get("exit_code")?,
        reason: row.try_get("reason")?,
        key_id: row.try_get("key_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        queue_seq: row.try_get("queue_seq")?,
        pgid: row.try_get("pgid")?,
        runner: row.try_get("runner")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        entry: AuditEntry {
            at: row.try_get("at")?,
            key_id: row.try_get("key_id")?,
            client_ip: row.try_get("client_ip")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            outcome: row.try_get("outcome")?,
            request_id: row.try_get("request_id")?,
            detail: row.try_get("detail")?,
        },
    })
}

async fn insert_audit<'e, E>(exec: E, entry: &AuditEntry) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO audit_events (at, key_id, client_ip, action, target, outcome, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.at)
    .bind(entry.key_id.clone())
    .bind(entry.client_ip.clone())
    .bind(entry.action.clone())
    .bind(entry.target.clone())
    .bind(entry.outcome.clone())
    .bind(entry.request_id.clone())
    .bind(entry.detail.clone())
    .execute(exec)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
        .execute(&mut *tx)
        .await?;
        if let Some(entry) = audit {
            insert_audit(&mut *tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<KeyRecord>> {
        let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn count_keys(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn revoke_key(&self, id: &str, at: i64) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_key(&self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_command(&self, cmd: &CommandRecord, audit: &AuditEntry) -> StoreResult<Inserted> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(concat!(
            "INSERT INTO commands (",
            command_columns!(),
            ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
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
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let row = sqlx::query(concat!(
                "SELECT ",
                command_columns!(),
                " FROM commands WHERE key_id = $1 AND idempotency_key = $2"
            ))
            .bind(cmd.key_id.clone())
            .bind(cmd.idempotency_key.clone())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Inserted::Existing(Box::new(command_from_row(&row)?)));
        }
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(Inserted::New)
    }

    async fn find_idempotent(&self, key_id: &str, idempotency_key: &str) -> StoreResult<Option<CommandRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE key_id = $1 AND idempotency_key = $2"
        ))
        .bind(key_id.to_owned())
        .bind(idempotency_key.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn get_command(&self, id: &str) -> StoreResult<Option<CommandRecord>> {
        let row = sqlx::query(concat!("SELECT ", command_columns!(), " FROM commands WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn list_commands(&self, q: &CommandQuery) -> StoreResult<Vec<CommandRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE project = $1 \
             AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR queue_seq < $3) \
             ORDER BY queue_seq DESC LIMIT $4"
        ))
        .bind(q.project.clone())
        .bind(q.state.map(|s| s.as_str().to_owned()))
        .bind(q.before)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(command_from_row).collect()
    }

    async fn next_queued(&self, project: &str) -> StoreResult<Option<CommandRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE project = $1 AND state = 'queued' \
             ORDER BY priority DESC, queue_seq ASC LIMIT 1"
        ))
        .bind(project.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn count_running(&self, project: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE project = $1 AND state = 'running'")
            .bind(project.to_owned())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn projects_with_queued(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT project FROM commands WHERE state = 'queued' ORDER BY project")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("project")?)).collect()
    }

    async fn commands_in_state(&self, state: CommandState) -> StoreResult<Vec<CommandRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE state = $1 ORDER BY queue_seq"
        ))
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(command_from_row).collect()
    }

    async fn transition(&self, change: &Transition<'_>) -> StoreResult<bool> {
        let from = change
            .from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let started = (change.to == CommandState::Running).then_some(change.at);
        let finished = change.to.is_terminal().then_some(change.at);
        let mut tx = self.pool.begin().await?;
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
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_audit(&mut *tx, &change.audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_process_group(&self, id: &str, runner: &str, pgid: i64) -> StoreResult<()> {
        sqlx::query("UPDATE commands SET pgid = $1, runner = $2 WHERE id = $3")
            .bind(pgid)
            .bind(runner.to_owned())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn append_output(&self, chunks: &[OutputChunk]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for c in chunks {
            sqlx::query("INSERT INTO command_output (command_id, seq, stream, data) VALUES ($1, $2, $3, $4)")
                .bind(c.command_id.clone())
                .bind(c.seq)
                .bind(c.stream.clone())
                .bind(c.text.as_bytes().to_vec())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn output_after(&self, command_id: &str, after: i64, limit: i64) -> StoreResult<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM command_output WHERE command_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(command_id.to_owned())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutputChunk {
                    command_id: command_id.to_owned(),
                    seq: r.try_get("seq")?,
                    stream: r.try_get("stream")?,
                    text: String::from_utf8(r.try_get("data")?).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        insert_audit(&self.pool, entry).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE ($1 IS NULL OR key_id = $1) \
             AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR target = $3) \
             AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7"
        ))
        .bind(q.key_id.clone())
        .bind(q.action.clone())
        .bind(q.target.clone())
        .bind(q.since)
        .bind(q.until)
        .bind(q.before)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
