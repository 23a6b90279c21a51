-- 0012_maintenance: planned maintenance windows of providers. During a window
-- the provider takes no new streams; with drain, its live streams are asked to
-- move off it beforehand. announced is the last of the window's started and
-- ended events published; progress holds the drain's progress (JSON).
CREATE TABLE maintenance_windows (
    id         TEXT             NOT NULL PRIMARY KEY,
    provider   TEXT             NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    start_at   BIGINT           NOT NULL,
    end_at     BIGINT           NOT NULL,
    ended_at   BIGINT,
    reason     TEXT             NOT NULL,
    drain      BOOLEAN          NOT NULL,
    drain_rate DOUBLE PRECISION NOT NULL,
    created_at BIGINT           NOT NULL,
    created_by TEXT             NOT NULL,
    announced  TEXT             NOT NULL DEFAULT '',
    progress   TEXT
);
CREATE INDEX maintenance_windows_end ON maintenance_windows (end_at);

-- Events meant for one owner (a stream's, asked to move it) carry the owner's
-- key, so that every replica sends them to that owner only.
ALTER TABLE switchboard_events ADD COLUMN IF NOT EXISTS owner TEXT NOT NULL DEFAULT '';
