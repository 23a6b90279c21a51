-- 0011_alerts: alert channels (secrets sealed like provider credentials),
-- rules, incidents and the delivery ledger that makes each notification of
-- an incident transition happen once, across restarts and replicas.
CREATE TABLE alert_channels (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    config     TEXT    NOT NULL, -- JSON: switchboard.ChannelConfig
    secrets    BYTEA,            -- sealed JSON of the secrets; NULL = none
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE alert_rules (
    name       TEXT    PRIMARY KEY,
    data       TEXT    NOT NULL, -- JSON: switchboard.AlertRule
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- One row per channel a rule names, so that a channel in use cannot be deleted.
CREATE TABLE alert_rule_channels (
    rule    TEXT NOT NULL REFERENCES alert_rules (name) ON DELETE CASCADE,
    channel TEXT NOT NULL REFERENCES alert_channels (name),
    PRIMARY KEY (rule, channel)
);

CREATE TABLE alert_incidents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    notice      BOOLEAN NOT NULL,
    opened_at   BIGINT  NOT NULL,
    resolved_at BIGINT
);

CREATE TABLE alert_deliveries (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id   BIGINT REFERENCES alert_incidents (id), -- NULL: a test send
    rule          TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    transition    TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    attempts      BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    next_at       BIGINT  NOT NULL,
    sent_at       BIGINT,
    last_error    TEXT    NOT NULL,
    claimed_by    TEXT    NOT NULL,
    claimed_until BIGINT  NOT NULL
);
-- The ledger: one delivery per incident transition, rule and channel.
CREATE UNIQUE INDEX alert_deliveries_once ON alert_deliveries (incident_id, rule, channel, transition, seq);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);

CREATE TABLE alert_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT  NOT NULL REFERENCES alert_deliveries (id),
    at          BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL,
    http_status BIGINT  NOT NULL,
    error       TEXT    NOT NULL,
    duration_ms BIGINT  NOT NULL
);
CREATE INDEX alert_attempts_delivery ON alert_attempts (delivery_id);
