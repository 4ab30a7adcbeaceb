//! The column lists of the tables, shared by both databases' queries. Macros, so that queries
//! stay `&'static str` (sqlx audits dynamic SQL).

macro_rules! command_insert_columns {
    () => {
        "id, project, kind, spec, state, priority, timeout_secs, exit_code, reason, key_id, \
         idempotency_key, request_hash, queue_seq, pgid, runner, created_at, started_at, finished_at, session_id"
    };
}
macro_rules! command_columns {
    () => {
        concat!(command_insert_columns!(), ", owner, run_summary")
    };
}
macro_rules! replica_columns {
    () => {
        "id, host, started_at, heartbeat_at, lease_expires_at"
    };
}
macro_rules! key_columns {
    () => {
        "id, name, hash, scopes, projects, allowed_cidrs, expires_at, created_at, last_used_at, revoked_at, \
         rate_limit_tier"
    };
}
macro_rules! audit_columns {
    () => {
        "id, at, key_id, client_ip, action, target, outcome, request_id, trace_id, detail"
    };
}
macro_rules! subscription_columns {
    () => {
        "id, url, events, projects, formatter, description, output_tail_bytes, secret, previous_secret, \
         previous_secret_until, state, disabled_reason, failing_since, created_at, updated_at"
    };
}
macro_rules! delivery_columns {
    () => {
        "id, subscription_id, event_id, event_type, project, state, attempts, attempts_total, due_at, \
         last_status, last_error, created_at, finished_at"
    };
}
macro_rules! attempt_columns {
    () => {
        "delivery_id, attempt, at, status, latency_ms, error_class, error, response"
    };
}
