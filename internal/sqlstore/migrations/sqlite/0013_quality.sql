-- 0013_quality: quality telemetry that clients send, kept as rollups per
-- provider, region and bucket so that the 5 min, 1 h and 24 h aggregates read
-- a bounded number of rows whatever the number of samples. span is the
-- bucket's length in nanoseconds (first in the key: reads and deletes take a
-- range of buckets of one span): a minute (kept as long as raw probe
-- results) or an hour (kept 35 days, like the hourly health rollups).
CREATE TABLE quality_rollups (
    provider      TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region        TEXT    NOT NULL,
    span          INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    samples       INTEGER NOT NULL,
    video_samples INTEGER NOT NULL,
    loss_sum      REAL    NOT NULL,
    freeze_count  INTEGER NOT NULL,
    freeze_ms     INTEGER NOT NULL,
    bitrate_sum   REAL    NOT NULL,
    fps_sum       REAL    NOT NULL,
    PRIMARY KEY (span, bucket, provider, region)
) STRICT, WITHOUT ROWID;
CREATE INDEX quality_rollups_provider ON quality_rollups (provider);

-- The histograms of RTT, loss and jitter of the same buckets: one row per
-- bin that has samples (see switchboard.QualityBin).
CREATE TABLE quality_histograms (
    provider TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region   TEXT    NOT NULL,
    span     INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    metric   TEXT    NOT NULL,
    bin      INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (span, bucket, provider, region, metric, bin)
) STRICT, WITHOUT ROWID;
CREATE INDEX quality_histograms_provider ON quality_histograms (provider);

-- The last sample of each stream per provider and region, to count the
-- streams sampled in a window.
CREATE TABLE quality_streams (
    provider  TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region    TEXT    NOT NULL,
    stream_id TEXT    NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (provider, region, stream_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX quality_streams_last_at ON quality_streams (last_at);
