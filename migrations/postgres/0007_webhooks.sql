-- Webhooks: subscriptions, the outbox (one delivery per event and subscription, inserted in the
-- transaction of the event's audit row, which is the event's record) and every attempt of each
-- delivery. Signing secrets are sealed (never stored in clear). Delivery workers of any replica
-- claim due rows with FOR UPDATE SKIP LOCKED and hold them under a lease.

CREATE TABLE webhook_subscriptions (
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    events                JSONB NOT NULL,
    projects              JSONB,
    formatter             TEXT NOT NULL,
    description           TEXT NOT NULL,
    output_tail_bytes     BIGINT NOT NULL,
    secret                BYTEA NOT NULL,
    previous_secret       BYTEA,
    previous_secret_until TIMESTAMPTZ,
    state                 TEXT NOT NULL,
    disabled_reason       TEXT,
    failing_since         TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id        BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    project         TEXT,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    attempts_total  BIGINT NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due_at);
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, created_at DESC, id);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    status      BIGINT,
    latency_ms  BIGINT NOT NULL,
    error_class TEXT,
    error       TEXT,
    response    TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
