-- 0015_regional_health: the health of each provider as probed from each
-- region, by the server's own probes (serve --region) or by probe agents
-- (switchboard agent). health is the folded record as JSON (counters, the
-- hysteresis latch, the tumbling window); status and last_check are copied
-- out of it for reading at a glance.
CREATE TABLE regional_health (
    provider   TEXT   NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region     TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    last_check BIGINT,
    health     TEXT   NOT NULL,
    PRIMARY KEY (provider, region)
);
