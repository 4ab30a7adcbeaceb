-- Replicas: every gateway process registers itself and renews a heartbeat lease (Unix ms). A
-- running command is owned by the replica that claimed it; a peer reconciles a replica's commands
-- only once its lease expired. A cancel asked on another replica is recorded for the owner.
CREATE TABLE replicas (
    id               TEXT PRIMARY KEY,
    host             TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    heartbeat_at     BIGINT NOT NULL,
    lease_expires_at BIGINT NOT NULL
);

ALTER TABLE commands ADD COLUMN owner TEXT;
ALTER TABLE commands ADD COLUMN cancel_requested_at BIGINT;
CREATE INDEX commands_by_owner ON commands (state, owner);
