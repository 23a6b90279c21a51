-- 0007_settings: the settings operators set at run time (the SDK settings
-- served in /api/streaming/config and the leader lease), as one JSON object
-- holding only the settings set; the others take the server's defaults.
CREATE TABLE settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1), -- one row
    data       TEXT    NOT NULL,                   -- JSON: switchboard.Settings
    updated_at INTEGER NOT NULL
) STRICT;
