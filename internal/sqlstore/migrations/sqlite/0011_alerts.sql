-- 0011_alerts: alert channels (secrets sealed like provider credentials),
-- rules, incidents and the delivery ledger that makes each notification of
-- an incident transition happen once, across restarts and replicas.
CREATE TABLE alert_channels (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    config     TEXT    NOT NULL, -- JSON: switchboard.ChannelConfig
    secrets    BLOB,             -- sealed JSON of the secrets; NULL = none
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE alert_rules (
    name       TEXT    PRIMARY KEY,
    data       TEXT    NOT NULL, -- JSON: switchboard.AlertRule
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- One row per channel a rule names, so that a channel in use cannot be deleted.
CREATE TABLE alert_rule_channels (
    rule    TEXT NOT NULL REFERENCES alert_rules (name) ON DELETE CASCADE,
    channel TEXT NOT NULL REFERENCES alert_channels (name),
    PRIMARY KEY (rule, channel)
) STRICT;

CREATE TABLE alert_incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    -- the key while the incident is open (for a notice: for ever), NULL once
    -- resolved: at most one open incident per key.
    active_key  TEXT    UNIQUE,
    cause       TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    status_from TEXT    NOT NULL,
    status_to   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    notice      INTEGER NOT NULL,
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER
) STRICT;

CREATE TABLE alert_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id   INTEGER REFERENCES alert_incidents (id), -- NULL: a test send
    rule          TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    transition    TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    attempts      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    sent_at       INTEGER,
    last_error    TEXT    NOT NULL,
    claimed_by    TEXT    NOT NULL,
    claimed_until INTEGER NOT NULL
) STRICT;
-- The ledger: one delivery per incident transition, rule and channel.
CREATE UNIQUE INDEX alert_deliveries_once ON alert_deliveries (incident_id, rule, channel, transition, seq);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);

CREATE TABLE alert_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES alert_deliveries (id),
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    http_status INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX alert_attempts_delivery ON alert_attempts (delivery_id);
