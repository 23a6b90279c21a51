-- 0001_init: providers, their health and history, audit log, tokens, users and sessions.
--
-- The PostgreSQL twin of migrations/sqlite/0001_init.sql, with the same
-- conventions: times are BIGINT Unix nanoseconds (UTC), rollup buckets the
-- Unix-nanosecond start of their UTC hour or day, provider credentials only
-- ever stored sealed. Booleans are BOOLEAN (SQLite stores them as 0/1; the Go
-- code reads and writes bool either way), JSON documents TEXT so that both
-- dialects scan them alike.

CREATE TABLE providers (
    name               TEXT             NOT NULL PRIMARY KEY,
    display_name       TEXT             NOT NULL,
    kind               TEXT             NOT NULL,
    enabled            BOOLEAN          NOT NULL,
    priority           BIGINT           NOT NULL,
    weight             BIGINT           NOT NULL,
    max_active_streams BIGINT           NOT NULL,
    regions            TEXT             NOT NULL, -- JSON array of region slugs
    config             TEXT             NOT NULL, -- JSON switchboard.ProviderConfig
    credentials        BYTEA,                     -- sealed JSON; never plaintext
    pricing            TEXT             NOT NULL, -- JSON switchboard.Pricing
    monthly_budget     DOUBLE PRECISION NOT NULL,
    health_check       TEXT             NOT NULL, -- JSON switchboard.HealthCheckPolicy
    created_at         BIGINT           NOT NULL,
    updated_at         BIGINT           NOT NULL
);

CREATE INDEX providers_priority ON providers (priority, name);

CREATE TABLE provider_health (
    provider              TEXT    NOT NULL PRIMARY KEY REFERENCES providers (name) ON DELETE CASCADE,
    status                TEXT    NOT NULL,
    total_checks          BIGINT  NOT NULL DEFAULT 0,
    successful_checks     BIGINT  NOT NULL DEFAULT 0,
    consecutive_failures  BIGINT  NOT NULL DEFAULT 0,
    consecutive_successes BIGINT  NOT NULL DEFAULT 0,
    down                  BOOLEAN NOT NULL DEFAULT FALSE,
    last_check            BIGINT,
    last_success          BIGINT,
    latency_ms            BIGINT  NOT NULL DEFAULT 0,
    latency_sum_ms        BIGINT  NOT NULL DEFAULT 0,
    total_requests        BIGINT  NOT NULL DEFAULT 0,
    failed_requests       BIGINT  NOT NULL DEFAULT 0,
    last_error_stage      TEXT,             -- NULL when there is no last error
    last_error_message    TEXT,
    last_error_at         BIGINT,
    status_reason         TEXT    NOT NULL DEFAULT '',
    status_since          BIGINT
);

-- Raw probe results, kept for a short while (CompactHistory deletes old ones).
CREATE TABLE probe_results (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider   TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    at         BIGINT  NOT NULL,
    ok         BOOLEAN NOT NULL,
    latency_ms BIGINT  NOT NULL,
    stage      TEXT    NOT NULL DEFAULT '',
    message    TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX probe_results_provider_at ON probe_results (provider, at);
CREATE INDEX probe_results_at ON probe_results (at);

CREATE TABLE health_hourly (
    provider       TEXT   NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    bucket         BIGINT NOT NULL,
    checks         BIGINT NOT NULL,
    successes      BIGINT NOT NULL,
    latency_sum_ms BIGINT NOT NULL,
    latency_max_ms BIGINT NOT NULL,
    PRIMARY KEY (provider, bucket)
);

CREATE INDEX health_hourly_bucket ON health_hourly (bucket);

CREATE TABLE health_daily (
    provider       TEXT   NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    bucket         BIGINT NOT NULL,
    checks         BIGINT NOT NULL,
    successes      BIGINT NOT NULL,
    latency_sum_ms BIGINT NOT NULL,
    latency_max_ms BIGINT NOT NULL,
    PRIMARY KEY (provider, bucket)
);

CREATE TABLE transitions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    TEXT   NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    from_status TEXT   NOT NULL,
    to_status   TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    at          BIGINT NOT NULL
);

CREATE INDEX transitions_provider_at ON transitions (provider, at);
CREATE INDEX transitions_at ON transitions (at);

-- The audit log outlives what it describes: no foreign keys.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_kind TEXT   NOT NULL,
    actor_name TEXT   NOT NULL,
    actor_role BIGINT NOT NULL,
    action     TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    before     TEXT,  -- JSON, credentials redacted
    after      TEXT   -- JSON, credentials redacted
);

CREATE INDEX audit_log_target ON audit_log (target, id);

CREATE TABLE api_tokens (
    id           TEXT   NOT NULL PRIMARY KEY,
    name         TEXT   NOT NULL,
    role         BIGINT NOT NULL,
    hash         BYTEA  NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_tokens_created_at ON api_tokens (created_at);

CREATE TABLE users (
    username      TEXT   NOT NULL PRIMARY KEY,
    role          BIGINT NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    hash       BYTEA  NOT NULL PRIMARY KEY,
    username   TEXT   NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role       BIGINT NOT NULL,
    csrf_token TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
