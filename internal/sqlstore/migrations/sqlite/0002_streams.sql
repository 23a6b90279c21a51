-- 0002_streams: streams, their provider segments and trail, frozen monthly
-- usage, and the record of periodic jobs that ran.
--
-- Streams, segments and trail have no foreign key to providers: a provider may
-- be deleted while its streams' history, and the usage it was paid for, stay.

CREATE TABLE streams (
    id              TEXT    NOT NULL PRIMARY KEY,
    room            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    region          TEXT    NOT NULL DEFAULT '',
    quality         TEXT    NOT NULL,
    provider        TEXT    NOT NULL, -- the current (or, once ended, the last) provider
    status          TEXT    NOT NULL, -- 'active' | 'ended'
    owner           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL DEFAULT '', -- '' = none
    started_at      INTEGER NOT NULL,
    last_heartbeat  INTEGER NOT NULL,
    ended_at        INTEGER,
    end_reason      TEXT    NOT NULL DEFAULT '',
    migrations      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- A retried start finds its stream; two concurrent ones cannot both insert.
CREATE UNIQUE INDEX streams_idempotency ON streams (owner, idempotency_key) WHERE idempotency_key <> '';
-- Capacity checks and active counts.
CREATE INDEX streams_status_provider ON streams (status, provider);
-- AbandonStale.
CREATE INDEX streams_heartbeat_active ON streams (last_heartbeat) WHERE status = 'active';
-- Listing, newest first, with a (started_at, id) cursor.
CREATE INDEX streams_started ON streams (started_at, id);
CREATE INDEX streams_owner_started ON streams (owner, started_at, id);

-- The time a stream spent on one provider: one segment per assignment (the
-- start, then one per migration). seq 0 is the start; later ones came by
-- migration. The open segment (ended_at NULL) is the current one, and runs up
-- to its stream's last heartbeat.
CREATE TABLE stream_segments (
    id         INTEGER NOT NULL PRIMARY KEY,
    stream_id  TEXT    NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    provider   TEXT    NOT NULL,
    quality    TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    end_reason TEXT    NOT NULL DEFAULT '', -- 'migrated' | 'ended' | 'abandoned' | another end reason
    UNIQUE (stream_id, seq)
) STRICT;

-- Total assignments per provider.
CREATE INDEX stream_segments_provider ON stream_segments (provider, ended_at);
-- Usage over a period: segments overlapping it, failovers in and out.
CREATE INDEX stream_segments_started ON stream_segments (started_at);
CREATE INDEX stream_segments_ended ON stream_segments (ended_at);

CREATE TABLE stream_trail (
    id            INTEGER NOT NULL PRIMARY KEY,
    stream_id     TEXT    NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    provider      TEXT    NOT NULL DEFAULT '',
    from_provider TEXT    NOT NULL DEFAULT '',
    reason        TEXT    NOT NULL DEFAULT '',
    statuses      TEXT,   -- JSON object provider -> status; NULL when none
    least_bad     INTEGER NOT NULL DEFAULT 0,
    stage         TEXT    NOT NULL DEFAULT '',
    code          TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX stream_trail_stream ON stream_trail (stream_id, id);

-- Usage and cost of past months, frozen by the monthly rollup.
CREATE TABLE usage_monthly (
    provider TEXT NOT NULL,
    month    TEXT NOT NULL, -- YYYY-MM
    minutes  TEXT NOT NULL, -- JSON object quality -> minutes
    cost     REAL NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (provider, month)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_monthly_month ON usage_monthly (month);

-- Periodic jobs that ran, so that each runs once per period across restarts
-- and replicas.
CREATE TABLE job_runs (
    job    TEXT    NOT NULL,
    period TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (job, period)
) STRICT, WITHOUT ROWID;
