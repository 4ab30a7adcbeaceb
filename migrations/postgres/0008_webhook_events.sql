-- The outbox in two steps. The transaction of an event writes one row here (only if some
-- subscription matches it); the delivery workers turn rows into their deliveries (one per
-- subscription that matches and existed when the event happened) and delete them, in one
-- transaction per batch. One row per event keeps the accept path cheap: twenty delivery rows
-- land in twenty places of each per-subscription index, and cost twenty times the pages.
CREATE TABLE webhook_events (
    event_id        BIGINT PRIMARY KEY,
    kind            TEXT NOT NULL,
    family          TEXT NOT NULL,
    project         TEXT,
    subscription_id TEXT,
    at              TIMESTAMPTZ NOT NULL
);

-- A claim looks at each active subscription's earliest due deliveries through this index, so its
-- cost follows the number of subscriptions, not the backlog (deliveries held for a paused
-- subscription, or queued behind a burst, are not read).
CREATE INDEX webhook_deliveries_due_by_subscription ON webhook_deliveries (subscription_id, state, due_at);
