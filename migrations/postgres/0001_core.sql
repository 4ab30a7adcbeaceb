-- Core tables: API keys, commands (and their queue), output chunks, audit events.
-- Timestamps are Unix milliseconds. Output is stored as UTF-8 bytes: it may contain NUL,
-- which a PostgreSQL TEXT value cannot hold.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    hash          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    projects      TEXT,
    allowed_cidrs TEXT,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

CREATE TABLE commands (
    id              TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    spec            TEXT NOT NULL,
    state           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    timeout_secs    BIGINT NOT NULL,
    exit_code       INTEGER,
    reason          TEXT,
    key_id          TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT,
    queue_seq       BIGINT NOT NULL,
    pgid            BIGINT,
    runner          TEXT,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE UNIQUE INDEX commands_idempotency ON commands (key_id, idempotency_key);
CREATE INDEX commands_queue ON commands (project, state, priority DESC, queue_seq);
CREATE INDEX commands_by_project ON commands (project, queue_seq);
CREATE INDEX commands_by_state ON commands (state);

CREATE TABLE command_output (
    command_id TEXT NOT NULL REFERENCES commands (id),
    seq        BIGINT NOT NULL,
    stream     TEXT NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (command_id, seq)
);

CREATE TABLE audit_events (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    key_id     TEXT,
    client_ip  TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    request_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_by_key ON audit_events (key_id, id);
CREATE INDEX audit_by_action ON audit_events (action, id);
CREATE INDEX audit_by_target ON audit_events (target, id);
