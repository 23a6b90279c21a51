-- 0005_replicas: what replicas sharing the database coordinate through: the
-- event log that carries events to every replica, and the leases that elect
-- the one replica that runs scheduled work (see internal/replica).
--
-- Databases that earlier versions served have these tables already, created
-- by the replicas themselves outside the migrations: IF NOT EXISTS keeps them
-- as they are.
CREATE TABLE IF NOT EXISTS switchboard_events (
    id       BIGSERIAL   PRIMARY KEY, -- the event id, the same on every replica
    replica  TEXT        NOT NULL,    -- the replica that published it
    type     TEXT        NOT NULL,
    audience INTEGER     NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    data     TEXT        NOT NULL     -- JSON
);

CREATE TABLE IF NOT EXISTS switchboard_leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
