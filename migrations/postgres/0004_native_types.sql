-- PostgreSQL's own types where they help the operators who query the database: times become
-- TIMESTAMPTZ (they were Unix milliseconds), JSON arrays and the accepted command become JSONB.
-- Audit details stay TEXT: some are free text.

ALTER TABLE api_keys
    ALTER COLUMN scopes TYPE JSONB USING scopes::jsonb,
    ALTER COLUMN projects TYPE JSONB USING projects::jsonb,
    ALTER COLUMN allowed_cidrs TYPE JSONB USING allowed_cidrs::jsonb,
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at / 1000.0),
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN last_used_at TYPE TIMESTAMPTZ USING to_timestamp(last_used_at / 1000.0),
    ALTER COLUMN revoked_at TYPE TIMESTAMPTZ USING to_timestamp(revoked_at / 1000.0);

ALTER TABLE commands
    ALTER COLUMN spec TYPE JSONB USING spec::jsonb,
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN started_at TYPE TIMESTAMPTZ USING to_timestamp(started_at / 1000.0),
    ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING to_timestamp(finished_at / 1000.0),
    ALTER COLUMN cancel_requested_at TYPE TIMESTAMPTZ USING to_timestamp(cancel_requested_at / 1000.0);

ALTER TABLE audit_events
    ALTER COLUMN at TYPE TIMESTAMPTZ USING to_timestamp(at / 1000.0);

ALTER TABLE replicas
    ALTER COLUMN started_at TYPE TIMESTAMPTZ USING to_timestamp(started_at / 1000.0),
    ALTER COLUMN heartbeat_at TYPE TIMESTAMPTZ USING to_timestamp(heartbeat_at / 1000.0),
    ALTER COLUMN lease_expires_at TYPE TIMESTAMPTZ USING to_timestamp(lease_expires_at / 1000.0);

ALTER TABLE readiness_probe
    ALTER COLUMN at TYPE TIMESTAMPTZ USING to_timestamp(at / 1000.0);
