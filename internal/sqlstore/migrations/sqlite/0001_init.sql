-- 0001_init: providers, their health and history, audit log, tokens, users and sessions.
--
-- Conventions (keep them in later migrations, and in migrations/postgres):
--   * every time is an INTEGER of Unix nanoseconds, UTC: exact round trips of Go
--     times, cheap range scans, and the same representation (BIGINT) on PostgreSQL;
--   * rollup buckets are the Unix-nanosecond start of their UTC hour or day;
--   * booleans are INTEGER 0/1;
--   * provider credentials are only ever stored sealed (AES-256-GCM) in
--     providers.credentials; NULL means no credentials.

CREATE TABLE providers (
    name               TEXT    NOT NULL PRIMARY KEY,
    display_name       TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    enabled            INTEGER NOT NULL,
    priority           INTEGER NOT NULL,
    weight             INTEGER NOT NULL,
    max_active_streams INTEGER NOT NULL,
    regions            TEXT    NOT NULL, -- JSON array of region slugs
    config             TEXT    NOT NULL, -- JSON switchboard.ProviderConfig
    credentials        BLOB,             -- sealed JSON; never plaintext
    pricing            TEXT    NOT NULL, -- JSON switchboard.Pricing
    monthly_budget     REAL    NOT NULL,
    health_check       TEXT    NOT NULL, -- JSON switchboard.HealthCheckPolicy
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX providers_priority ON providers (priority, name);

CREATE TABLE provider_health (
    provider              TEXT    NOT NULL PRIMARY KEY REFERENCES providers (name) ON DELETE CASCADE,
    status                TEXT    NOT NULL,
    total_checks          INTEGER NOT NULL DEFAULT 0,
    successful_checks     INTEGER NOT NULL DEFAULT 0,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    consecutive_successes INTEGER NOT NULL DEFAULT 0,
    down                  INTEGER NOT NULL DEFAULT 0,
    last_check            INTEGER,
    last_success          INTEGER,
    latency_ms            INTEGER NOT NULL DEFAULT 0,
    latency_sum_ms        INTEGER NOT NULL DEFAULT 0,
    total_requests        INTEGER NOT NULL DEFAULT 0,
    failed_requests       INTEGER NOT NULL DEFAULT 0,
    last_error_stage      TEXT,             -- NULL when there is no last error
    last_error_message    TEXT,
    last_error_at         INTEGER,
    status_reason         TEXT    NOT NULL DEFAULT '',
    status_since          INTEGER
) STRICT;

-- Raw probe results, kept for a short while (CompactHistory deletes old ones).
CREATE TABLE probe_results (
    id         INTEGER NOT NULL PRIMARY KEY,
    provider   TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    stage      TEXT    NOT NULL DEFAULT '',
    message    TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX probe_results_provider_at ON probe_results (provider, at);
CREATE INDEX probe_results_at ON probe_results (at);

CREATE TABLE health_hourly (
    provider       TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    bucket         INTEGER NOT NULL,
    checks         INTEGER NOT NULL,
    successes      INTEGER NOT NULL,
    latency_sum_ms INTEGER NOT NULL,
    latency_max_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, bucket)
) STRICT, WITHOUT ROWID;

CREATE INDEX health_hourly_bucket ON health_hourly (bucket);

CREATE TABLE health_daily (
    provider       TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    bucket         INTEGER NOT NULL,
    checks         INTEGER NOT NULL,
    successes      INTEGER NOT NULL,
    latency_sum_ms INTEGER NOT NULL,
    latency_max_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, bucket)
) STRICT, WITHOUT ROWID;

CREATE TABLE transitions (
    id          INTEGER NOT NULL PRIMARY KEY,
    provider    TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX transitions_provider_at ON transitions (provider, at);
CREATE INDEX transitions_at ON transitions (at);

-- The audit log outlives what it describes: no foreign keys.
CREATE TABLE audit_log (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor_kind TEXT    NOT NULL,
    actor_name TEXT    NOT NULL,
    actor_role INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    before     TEXT,  -- JSON, credentials redacted
    after      TEXT   -- JSON, credentials redacted
) STRICT;

CREATE INDEX audit_log_target ON audit_log (target, id);

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         INTEGER NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_tokens_created_at ON api_tokens (created_at);

CREATE TABLE users (
    username      TEXT    NOT NULL PRIMARY KEY,
    role          INTEGER NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    hash       BLOB    NOT NULL PRIMARY KEY,
    username   TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role       INTEGER NOT NULL,
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
