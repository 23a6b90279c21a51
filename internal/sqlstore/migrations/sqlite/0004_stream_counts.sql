-- 0004_stream_counts: each provider's active streams and assignments ever,
-- kept by the writes that change them, so that a capacity check, the active
-- counts and the total streams of a provider read a few rows instead of
-- counting streams (which grows with the streams live now, or with the whole
-- history).
--
-- A provider's count is the sum over its shards. Every start, migration, end
-- and abandonment adds to one shard of each provider it changes, in its own
-- transaction, so the sum is exact. SQLite, which has one writer, uses shard 0
-- only; on PostgreSQL concurrent writers spread over several shards instead of
-- queueing on one row. A shard may go negative (a stream counted in on one
-- shard and out on another); the sum never does.
--
-- No foreign key to providers: the counts of a deleted provider's streams stay,
-- as the streams do.
CREATE TABLE provider_stream_counts (
    provider TEXT    NOT NULL,
    shard    INTEGER NOT NULL,
    active   INTEGER NOT NULL DEFAULT 0, -- streams on the provider now
    total    INTEGER NOT NULL DEFAULT 0, -- assignments ever: starts and migrations in
    PRIMARY KEY (provider, shard)
) STRICT, WITHOUT ROWID;

INSERT INTO provider_stream_counts (provider, shard, active, total)
SELECT g.provider, 0,
       (SELECT COUNT(*) FROM streams s WHERE s.status = 'active' AND s.provider = g.provider),
       COUNT(*)
FROM stream_segments g GROUP BY g.provider;
