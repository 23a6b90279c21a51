-- 0006_health_window: uptime and error rate over a window, and client-reported
-- failures counted by time.
--
-- provider_health keeps the counts of the provider's healthCheck.window as of
-- its last check or report (window_span 0: not computed yet, the rules use the
-- lifetime counters). They are recomputed on every write from the hourly
-- rollups of the hours inside the window plus the raw rows of its first,
-- partial hour, so that their cost does not grow with the window.
ALTER TABLE provider_health ADD COLUMN window_span            INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_health ADD COLUMN window_at              INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_health ADD COLUMN window_checks          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_health ADD COLUMN window_successes       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_health ADD COLUMN window_client_failures INTEGER NOT NULL DEFAULT 0;

-- The first, partial hour of a window counts raw results by provider and
-- time and adds up ok: an index that holds ok reads them without the table.
DROP INDEX probe_results_provider_at;
CREATE INDEX probe_results_provider_at ON probe_results (provider, at, ok);

-- Raw client-reported failures, kept as long as raw probe results: one row
-- per report of one or more failures at the same time.
CREATE TABLE client_failures (
    id       INTEGER NOT NULL PRIMARY KEY,
    provider TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    failures INTEGER NOT NULL
) STRICT;

CREATE INDEX client_failures_provider_at ON client_failures (provider, at);
CREATE INDEX client_failures_at ON client_failures (at);

-- Client-reported failures per provider and UTC hour, kept for good: one
-- small row per hour that had any.
CREATE TABLE client_failures_hourly (
    provider TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    bucket   INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (provider, bucket)
) STRICT, WITHOUT ROWID;

CREATE INDEX client_failures_hourly_bucket ON client_failures_hourly (bucket);
