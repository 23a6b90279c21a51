-- 0016_routing: the routing configuration (switchboard.RoutingConfig, one
-- JSON object) and the streams started per policy scope ("" for the global
-- policy, else a region) and provider, by hour, from which commit holds its
-- traffic shares over the last day.
CREATE TABLE routing (
    id         INTEGER PRIMARY KEY CHECK (id = 1), -- one row
    data       TEXT    NOT NULL,                   -- JSON: switchboard.RoutingConfig
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE routing_starts (
    bucket   INTEGER NOT NULL, -- the start of the hour, as every time column
    scope    TEXT    NOT NULL,
    provider TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (bucket, scope, provider)
) STRICT, WITHOUT ROWID;
