-- 0013_quality: quality telemetry that clients send, kept as rollups per
-- provider, region and bucket so that the 5 min, 1 h and 24 h aggregates read
-- a bounded number of rows whatever the number of samples. span is the
-- bucket's length in nanoseconds (first in the key: reads and deletes take a
-- range of buckets of one span): a minute (kept as long as raw probe
-- results) or an hour (kept 35 days, like the hourly health rollups).
CREATE TABLE quality_rollups (
    provider      TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region        TEXT    NOT NULL,
    span          BIGINT  NOT NULL,
    bucket        BIGINT  NOT NULL,
    samples       BIGINT  NOT NULL,
    video_samples BIGINT  NOT NULL,
    loss_sum      DOUBLE PRECISION NOT NULL,
    freeze_count  BIGINT  NOT NULL,
    freeze_ms     BIGINT  NOT NULL,
    bitrate_sum   DOUBLE PRECISION NOT NULL,
    fps_sum       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (span, bucket, provider, region)
);
CREATE INDEX quality_rollups_provider ON quality_rollups (provider);

-- The histograms of RTT, loss and jitter of the same buckets: one row per
-- bin that has samples (see switchboard.QualityBin).
CREATE TABLE quality_histograms (
    provider TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region   TEXT    NOT NULL,
    span     BIGINT  NOT NULL,
    bucket   BIGINT  NOT NULL,
    metric   TEXT    NOT NULL,
    bin      BIGINT  NOT NULL,
    n        BIGINT  NOT NULL,
    PRIMARY KEY (span, bucket, provider, region, metric, bin)
);
CREATE INDEX quality_histograms_provider ON quality_histograms (provider);

-- The last sample of each stream per provider and region, to count the
-- streams sampled in a window.
CREATE TABLE quality_streams (
    provider  TEXT    NOT NULL REFERENCES providers (name) ON DELETE CASCADE,
    region    TEXT    NOT NULL,
    stream_id TEXT    NOT NULL,
    last_at   BIGINT  NOT NULL,
    PRIMARY KEY (provider, region, stream_id)
);
CREATE INDEX quality_streams_last_at ON quality_streams (last_at);
