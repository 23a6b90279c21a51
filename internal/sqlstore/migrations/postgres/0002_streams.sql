-- 0002_streams: streams, their provider segments and trail, frozen monthly
-- usage, and the record of periodic jobs that ran. The PostgreSQL twin of
-- migrations/sqlite/0002_streams.sql.
--
-- Streams, segments and trail have no foreign key to providers: a provider may
-- be deleted while its streams' history, and the usage it was paid for, stay.

CREATE TABLE streams (
    id              TEXT   NOT NULL PRIMARY KEY,
    room            TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    role            TEXT   NOT NULL,
    region          TEXT   NOT NULL DEFAULT '',
    quality         TEXT   NOT NULL,
    provider        TEXT   NOT NULL, -- the current (or, once ended, the last) provider
    status          TEXT   NOT NULL, -- 'active' | 'ended'
    owner           TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL DEFAULT '', -- '' = none
    started_at      BIGINT NOT NULL,
    last_heartbeat  BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT   NOT NULL DEFAULT '',
    migrations      BIGINT NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX streams_idempotency ON streams (owner, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX streams_status_provider ON streams (status, provider);
CREATE INDEX streams_heartbeat_active ON streams (last_heartbeat) WHERE status = 'active';
CREATE INDEX streams_started ON streams (started_at, id);
CREATE INDEX streams_owner_started ON streams (owner, started_at, id);

CREATE TABLE stream_segments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id  TEXT   NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    provider   TEXT   NOT NULL,
    quality    TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT,
    end_reason TEXT   NOT NULL DEFAULT '', -- 'migrated' | 'ended' | 'abandoned' | another end reason
    UNIQUE (stream_id, seq)
);

CREATE INDEX stream_segments_provider ON stream_segments (provider, ended_at);
CREATE INDEX stream_segments_started ON stream_segments (started_at);
CREATE INDEX stream_segments_ended ON stream_segments (ended_at);

CREATE TABLE stream_trail (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id     TEXT    NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    at            BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,
    provider      TEXT    NOT NULL DEFAULT '',
    from_provider TEXT    NOT NULL DEFAULT '',
    reason        TEXT    NOT NULL DEFAULT '',
    statuses      TEXT,   -- JSON object provider -> status; NULL when none
    least_bad     BOOLEAN NOT NULL DEFAULT FALSE,
    stage         TEXT    NOT NULL DEFAULT '',
    code          TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX stream_trail_stream ON stream_trail (stream_id, id);

CREATE TABLE usage_monthly (
    provider TEXT             NOT NULL,
    month    TEXT             NOT NULL, -- YYYY-MM
    minutes  TEXT             NOT NULL, -- JSON object quality -> minutes
    cost     DOUBLE PRECISION NOT NULL,
    currency TEXT             NOT NULL,
    PRIMARY KEY (provider, month)
);

CREATE INDEX usage_monthly_month ON usage_monthly (month);

CREATE TABLE job_runs (
    job    TEXT   NOT NULL,
    period TEXT   NOT NULL,
    at     BIGINT NOT NULL,
    PRIMARY KEY (job, period)
);
