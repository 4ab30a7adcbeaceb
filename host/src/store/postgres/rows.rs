//! Between PostgreSQL's rows and the store's records: times are `TIMESTAMPTZ` in the database and
//! Unix milliseconds in the records, lists and the accepted command are `JSONB`.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::store::{
    AuditEntry, AuditRecord, CommandRecord, CommandState, KeyRecord, OutputChunk, ReplicaRecord, StoreError,
    StoreResult,
};

/// Unix milliseconds as a timestamp; out-of-range values saturate (a horizon of `i64::MAX`
/// means "whatever the lease").
pub(super) fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or_else(|_| {
        let limit = if ms > 0 {
            time::PrimitiveDateTime::MAX
        } else {
            time::PrimitiveDateTime::MIN
        };
        limit.assume_utc()
    })
}

/// A timestamp as Unix milliseconds.
pub(super) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn ms_of(row: &PgRow, column: &str) -> StoreResult<i64> {
    Ok(ms(row.try_get(column)?))
}

pub(super) fn maybe_ms_of(row: &PgRow, column: &str) -> StoreResult<Option<i64>> {
    Ok(row.try_get::<Option<OffsetDateTime>, _>(column)?.map(ms))
}

/// The accepted command, stored as `JSONB` from the record's JSON text.
pub(super) fn spec_json(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("command spec: {e}")))
}

pub(super) fn key(row: &PgRow) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        scopes: row.try_get::<Json<Vec<String>>, _>("scopes")?.0,
        projects: row.try_get::<Option<Json<Vec<String>>>, _>("projects")?.map(|j| j.0),
        allowed_cidrs: row
            .try_get::<Option<Json<Vec<ipnet::IpNet>>>, _>("allowed_cidrs")?
            .map(|j| j.0),
        expires_at: maybe_ms_of(row, "expires_at")?,
        created_at: ms_of(row, "created_at")?,
        last_used_at: maybe_ms_of(row, "last_used_at")?,
        revoked_at: maybe_ms_of(row, "revoked_at")?,
        rate_limit_tier: row.try_get("rate_limit_tier")?,
    })
}

pub(super) fn command(row: &PgRow) -> StoreResult<CommandRecord> {
    let state: String = row.try_get("state")?;
    Ok(CommandRecord {
        id: row.try_get("id")?,
        project: row.try_get("project")?,
        kind: row.try_get("kind")?,
        spec: row.try_get::<serde_json::Value, _>("spec")?.to_string(),
        state: state.parse::<CommandState>().map_err(corrupt)?,
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
        created_at: ms_of(row, "created_at")?,
        started_at: maybe_ms_of(row, "started_at")?,
        finished_at: maybe_ms_of(row, "finished_at")?,
        owner: row.try_get("owner")?,
        session_id: row.try_get("session_id")?,
        run_summary: row
            .try_get::<Option<serde_json::Value>, _>("run_summary")?
            .map(|v| v.to_string()),
    })
}

pub(super) fn audit(row: &PgRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        entry: AuditEntry {
            at: ms_of(row, "at")?,
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

/// A stored value the records cannot hold (an unknown state, text that is not UTF-8).
pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// One `command_output` row (`seq`, `stream`, `data`) of `command_id`.
pub(super) fn output_chunk(command_id: &str, row: &PgRow) -> StoreResult<OutputChunk> {
    Ok(OutputChunk {
        command_id: command_id.to_owned(),
        seq: row.try_get("seq")?,
        stream: row.try_get("stream")?,
        text: String::from_utf8(row.try_get("data")?).map_err(corrupt)?,
    })
}

pub(super) fn replica(row: &PgRow) -> StoreResult<ReplicaRecord> {
    Ok(ReplicaRecord {
        id: row.try_get("id")?,
        host: row.try_get("host")?,
        started_at: ms_of(row, "started_at")?,
        heartbeat_at: ms_of(row, "heartbeat_at")?,
        lease_expires_at: ms_of(row, "lease_expires_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_timestamps() {
        for t in [0, 1, 1_764_640_000_123, -1_500] {
            assert_eq!(ms(at(t)), t);
        }
    }
}
