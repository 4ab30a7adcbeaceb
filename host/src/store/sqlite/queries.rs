//! The store contract on SQLite: reads on the read-only pool, writes through the one writer
//! connection's group commit.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::{OutputFiles, OutputLogs, Work, Writer};
use crate::store::{
    AuditEntry, AuditQuery, AuditRecord, Claim, CommandQuery, CommandRecord, CommandState, Inserted, KeyRecord,
    OutputChunk, ReplicaRecord, Store, StoreError, StoreResult, Transition,
};

/// The [`Store`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Read-only connections.
    pool: SqlitePool,
    /// Where writes go: the one writer connection, through group commit.
    writer: Arc<Writer>,
    /// Command output, in files of its own.
    output: Arc<OutputLogs>,
}

mod ownership;
mod retention;
mod webhooks;
mod writes;

impl SqliteStore {
    pub(in crate::store::sqlite) fn new(readers: SqlitePool, writer: Writer, output: OutputLogs) -> Self {
        Self {
            pool: readers,
            writer: Arc::new(writer),
            output: Arc::new(output),
        }
    }

    /// Runs blocking work on the output files off the async threads.
    async fn on_files<T: Send + 'static>(
        &self,
        work: impl FnOnce(&OutputFiles) -> std::io::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let files = self.output.files();
        tokio::task::spawn_blocking(move || work(&files))
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
            .and_then(|done| done)
            .map_err(StoreError::from)
    }

    /// Runs one write in the writer's next batch.
    async fn write<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        self.writer.run(work).await
    }
}

/// A [`Transition`] that owns its strings, for a write that runs after the caller's borrow.
struct OwnedTransition {
    id: String,
    from: Vec<CommandState>,
    to: CommandState,
    exit_code: Option<i32>,
    reason: Option<String>,
    at: i64,
    audit: AuditEntry,
}

impl OwnedTransition {
    fn of(change: &Transition<'_>) -> Self {
        Self {
            id: change.id.to_owned(),
            from: change.from.to_vec(),
            to: change.to,
            exit_code: change.exit_code,
            reason: change.reason.map(str::to_owned),
            at: change.at,
            audit: change.audit.clone(),
        }
    }

    fn borrowed(&self) -> Transition<'_> {
        Transition {
            id: &self.id,
            from: &self.from,
            to: self.to,
            exit_code: self.exit_code,
            reason: self.reason.as_deref(),
            at: self.at,
            audit: self.audit.clone(),
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

fn key_from_row(row: &SqliteRow) -> StoreResult<KeyRecord> {
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
        rate_limit_tier: row.try_get("rate_limit_tier")?,
    })
}

fn command_from_row(row: &SqliteRow) -> StoreResult<CommandRecord> {
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
        owner: row.try_get("owner")?,
        session_id: row.try_get("session_id")?,
        run_summary: row.try_get("run_summary")?,
    })
}

/// One `command_output` row (`seq`, `stream`, `data`) of `command_id`.
fn chunk_from_row(command_id: &str, row: &SqliteRow) -> StoreResult<OutputChunk> {
    Ok(OutputChunk {
        command_id: command_id.to_owned(),
        seq: row.try_get("seq")?,
        stream: row.try_get("stream")?,
        text: String::from_utf8(row.try_get("data")?).map_err(corrupt)?,
    })
}

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditRecord> {
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
            trace_id: row.try_get("trace_id")?,
            detail: row.try_get("detail")?,
            event: None,
        },
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn probe(&self) -> StoreResult<()> {
        let at = crate::time::now_ms();
        self.write(Box::new(move |conn| Box::pin(writes::probe(conn, at))))
            .await?;
        sqlx::query("SELECT at FROM readiness_probe WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<()> {
        let (key, audit) = (key.clone(), audit.cloned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::insert_key(conn, &key, audit.as_ref()).await })
        }))
        .await
    }

    async fn insert_first_key(&self, key: &KeyRecord, audit: Option<&AuditEntry>) -> StoreResult<bool> {
        let (key, audit) = (key.clone(), audit.cloned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::insert_first_key(conn, &key, audit.as_ref()).await })
        }))
        .await
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

    async fn revoke_key(&self, id: &str, at: i64, audit: Option<&AuditEntry>) -> StoreResult<bool> {
        let (id, audit) = (id.to_owned(), audit.cloned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::revoke_key(conn, &id, at, audit.as_ref()).await })
        }))
        .await
    }

    async fn touch_key(&self, id: &str, at: i64) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::touch_key(conn, &id, at).await })
        }))
        .await
    }

    async fn insert_command(&self, cmd: &CommandRecord, audits: &[AuditEntry]) -> StoreResult<Inserted> {
        let (cmd, audits) = (cmd.clone(), audits.to_vec());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::insert_command(conn, &cmd, &audits).await })
        }))
        .await
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

    async fn count_queued(&self, project: Option<&str>) -> StoreResult<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE state = 'queued' AND ($1 IS NULL OR project = $1)")
                .bind(project.map(str::to_owned))
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

    async fn transition(&self, change: &Transition<'_>) -> StoreResult<bool> {
        let owned = OwnedTransition::of(change);
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::transition(conn, &owned.borrowed()).await })
        }))
        .await
    }

    async fn set_process_group(&self, id: &str, runner: &str, pgid: i64) -> StoreResult<()> {
        let (id, runner) = (id.to_owned(), runner.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::set_process_group(conn, &id, &runner, pgid).await })
        }))
        .await
    }

    async fn set_run_summary(&self, id: &str, session_id: Option<&str>, summary: &str) -> StoreResult<()> {
        let (id, session_id, summary) = (id.to_owned(), session_id.map(str::to_owned), summary.to_owned());
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::set_run_summary(conn, &id, session_id.as_deref(), &summary).await })
        }))
        .await
    }

    async fn session_command(&self, project: &str, session_id: Option<&str>) -> StoreResult<Option<CommandRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE project = $1 AND session_id IS NOT NULL AND ($2 IS NULL OR session_id = $2) \
             ORDER BY created_at DESC, queue_seq DESC LIMIT 1"
        ))
        .bind(project.to_owned())
        .bind(session_id.map(str::to_owned))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn claim_next(&self, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
        self.claim(claim).await
    }

    async fn orphaned_commands(&self) -> StoreResult<Vec<CommandRecord>> {
        self.orphans().await
    }

    async fn request_cancel(&self, id: &str, at: i64) -> StoreResult<bool> {
        self.ask_cancel(id, at).await
    }

    async fn cancels_requested(&self, owner: &str) -> StoreResult<Vec<String>> {
        self.cancels_of(owner).await
    }

    async fn register_replica(&self, replica: &ReplicaRecord) -> StoreResult<()> {
        self.register(replica).await
    }

    async fn renew_lease(&self, id: &str, at: i64, expires_at: i64) -> StoreResult<bool> {
        self.renew(id, at, expires_at).await
    }

    async fn live_replicas(&self, now: i64) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM replicas WHERE lease_expires_at >= $1")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn expired_replicas(&self, now: i64) -> StoreResult<Vec<ReplicaRecord>> {
        self.expired(now).await
    }

    async fn remove_replica(&self, id: &str, expired_before: Option<i64>) -> StoreResult<bool> {
        self.remove(id, expired_before).await
    }

    async fn append_output(&self, chunks: Arc<Vec<OutputChunk>>) -> StoreResult<()> {
        self.on_files(move |files| files.append(&chunks)).await
    }

    async fn seal_output(&self, command_id: &str) -> StoreResult<()> {
        let id = command_id.to_owned();
        let Some(bytes) = self.on_files(move |files| files.seal(&id)).await? else {
            return Ok(());
        };
        let id = command_id.to_owned();
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::set_output_file_bytes(conn, &id, bytes).await })
        }))
        .await
    }

    async fn output_after(&self, command_id: &str, after: i64, limit: i64) -> StoreResult<Vec<OutputChunk>> {
        let id = command_id.to_owned();
        if let Some(chunks) = self.on_files(move |files| files.read_after(&id, after, limit)).await? {
            return Ok(chunks);
        }
        // Output stored before output files existed.
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM command_output WHERE command_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(command_id.to_owned())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| chunk_from_row(command_id, r)).collect()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(Box::new(move |conn| {
            Box::pin(async move { writes::append_audit(conn, &entry).await })
        }))
        .await
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
