//! Commands, their transitions and their output on PostgreSQL.

use sqlx::{Connection, PgConnection, PgPool, Row};

use super::audit::insert_audit;
use super::rows::{self, at, spec_json};
use crate::store::{
    AuditEntry, CommandQuery, CommandRecord, CommandState, Inserted, OutputChunk, StoreResult, Transition,
};

pub(super) async fn insert(
    conn: &mut PgConnection,
    cmd: &CommandRecord,
    audits: &[AuditEntry],
) -> StoreResult<Inserted> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query(concat!(
        "INSERT INTO commands (",
        command_insert_columns!(),
        ") \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (key_id, idempotency_key) DO NOTHING"
    ))
    .bind(&cmd.id)
    .bind(&cmd.project)
    .bind(&cmd.kind)
    .bind(spec_json(&cmd.spec)?)
    .bind(cmd.state.as_str())
    .bind(cmd.priority)
    .bind(cmd.timeout_secs)
    .bind(cmd.exit_code)
    .bind(&cmd.reason)
    .bind(&cmd.key_id)
    .bind(&cmd.idempotency_key)
    .bind(&cmd.request_hash)
    .bind(cmd.queue_seq)
    .bind(cmd.pgid)
    .bind(&cmd.runner)
    .bind(at(cmd.created_at))
    .bind(cmd.started_at.map(at))
    .bind(cmd.finished_at.map(at))
    .bind(&cmd.session_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Another request (on any replica) stored this idempotency key first; it committed
        // before our insert returned, so this statement sees it.
        let row = sqlx::query(concat!(
            "SELECT ",
            command_columns!(),
            " FROM commands WHERE key_id = $1 AND idempotency_key = $2"
        ))
        .bind(&cmd.key_id)
        .bind(&cmd.idempotency_key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Inserted::Existing(Box::new(rows::command(&row)?)));
    }
    for audit in audits {
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(Inserted::New)
}

pub(super) async fn get(pool: &PgPool, id: &str) -> StoreResult<Option<CommandRecord>> {
    let row = sqlx::query(concat!("SELECT ", command_columns!(), " FROM commands WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(rows::command).transpose()
}

pub(super) async fn find_idempotent(pool: &PgPool, key_id: &str, key: &str) -> StoreResult<Option<CommandRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands WHERE key_id = $1 AND idempotency_key = $2"
    ))
    .bind(key_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(rows::command).transpose()
}

pub(super) async fn list(pool: &PgPool, q: &CommandQuery) -> StoreResult<Vec<CommandRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands WHERE project = $1 \
         AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR queue_seq < $3) \
         ORDER BY queue_seq DESC LIMIT $4"
    ))
    .bind(&q.project)
    .bind(q.state.map(CommandState::as_str))
    .bind(q.before)
    .bind(q.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(rows::command).collect()
}

pub(super) async fn next_queued(pool: &PgPool, project: &str) -> StoreResult<Option<CommandRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands WHERE project = $1 AND state = 'queued' ORDER BY priority DESC, queue_seq ASC LIMIT 1"
    ))
    .bind(project)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(rows::command).transpose()
}

pub(super) async fn count_running(pool: &PgPool, project: &str) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE project = $1 AND state = 'running'")
        .bind(project)
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn count_queued(pool: &PgPool, project: Option<&str>) -> StoreResult<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM commands WHERE state = 'queued' AND ($1::text IS NULL OR project = $1)")
            .bind(project)
            .fetch_one(pool)
            .await?;
    Ok(row.try_get("n")?)
}

pub(super) async fn projects_with_queued(pool: &PgPool) -> StoreResult<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT project FROM commands WHERE state = 'queued' ORDER BY project")
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("project")?)).collect()
}

pub(super) async fn transition(conn: &mut PgConnection, change: &Transition<'_>) -> StoreResult<bool> {
    let from: Vec<&str> = change.from.iter().map(|s| s.as_str()).collect();
    let started = (change.to == CommandState::Running).then(|| at(change.at));
    let finished = change.to.is_terminal().then(|| at(change.at));
    let mut tx = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE commands SET state = $1, exit_code = COALESCE($2, exit_code), reason = COALESCE($3, reason), \
         started_at = COALESCE($4, started_at), finished_at = COALESCE($5, finished_at) \
         WHERE id = $6 AND state = ANY($7)",
    )
    .bind(change.to.as_str())
    .bind(change.exit_code)
    .bind(change.reason)
    .bind(started)
    .bind(finished)
    .bind(change.id)
    .bind(&from)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_audit(&mut tx, &change.audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn set_process_group(conn: &mut PgConnection, id: &str, runner: &str, pgid: i64) -> StoreResult<()> {
    sqlx::query("UPDATE commands SET pgid = $1, runner = $2 WHERE id = $3")
        .bind(pgid)
        .bind(runner)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn set_run_summary(
    conn: &mut PgConnection,
    id: &str,
    session_id: Option<&str>,
    summary: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE commands SET session_id = COALESCE($1, session_id), run_summary = $2 WHERE id = $3")
        .bind(session_id)
        .bind(spec_json(summary)?)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn session_command(
    pool: &PgPool,
    project: &str,
    session_id: Option<&str>,
) -> StoreResult<Option<CommandRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands WHERE project = $1 AND session_id IS NOT NULL AND ($2::TEXT IS NULL OR session_id = $2) \
         ORDER BY created_at DESC, queue_seq DESC LIMIT 1"
    ))
    .bind(project)
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(rows::command).transpose()
}

/// Appends chunks in one statement (arrays unnested), whatever their number.
pub(super) async fn append_output(conn: &mut PgConnection, chunks: &[OutputChunk]) -> StoreResult<()> {
    let ids: Vec<&str> = chunks.iter().map(|c| c.command_id.as_str()).collect();
    let seqs: Vec<i64> = chunks.iter().map(|c| c.seq).collect();
    let streams: Vec<&str> = chunks.iter().map(|c| c.stream.as_str()).collect();
    let data: Vec<&[u8]> = chunks.iter().map(|c| c.text.as_bytes()).collect();
    sqlx::query(
        "INSERT INTO command_output (command_id, seq, stream, data) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[]) \
         ON CONFLICT (command_id, seq) DO NOTHING",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&streams)
    .bind(&data)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn output_after(
    pool: &PgPool,
    command_id: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<OutputChunk>> {
    let rows = sqlx::query(
        "SELECT seq, stream, data FROM command_output WHERE command_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(command_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| super::rows::output_chunk(command_id, r)).collect()
}
