-- 0018_ended_segments_by_provider: the index of segments by provider holds
-- the ended ones only. A segment is open from its stream's start (or move)
-- to its end (or next move), and the open segment of a stream is on the
-- stream's provider, with its number of moves as seq: a provider's open
-- segments are found through its active streams (streams_status_provider)
-- and their primary keys. Indexed at the start, the open segment was one
-- more B-tree position per provider that a group of starts wrote to: with
-- 100 providers, a commit dirtied a page of this index for every provider
-- it started a stream on, with 2 providers two pages. It is indexed when
-- it ends instead.
DROP INDEX stream_segments_provider;
CREATE INDEX stream_segments_provider ON stream_segments (provider, ended_at) WHERE ended_at IS NOT NULL;
