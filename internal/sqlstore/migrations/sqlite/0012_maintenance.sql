-- 0012_maintenance: planned maintenance windows of providers. During a window
-- the provider takes no new streams; with drain, its live streams are asked to
-- move off it beforehand. announced is the last of the window's started and
-- ended events published; progress holds the drain's progress (JSON).
CREATE TABLE maintenance_windows (
    id         TEXT    NOT NULL PRIMARY KEY,
    provider   TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL,
    ended_at   INTEGER,
    reason     TEXT    NOT NULL,
    drain      INTEGER NOT NULL,
    drain_rate REAL    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    announced  TEXT    NOT NULL DEFAULT '',
    progress   TEXT
) STRICT;
CREATE INDEX maintenance_windows_end ON maintenance_windows (end_at);
