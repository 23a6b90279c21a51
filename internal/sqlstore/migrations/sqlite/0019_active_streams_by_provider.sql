-- 0019_active_streams_by_provider: no index of streams leads with their
-- provider. streams_status_provider put a new stream at the end of its
-- provider's range: with 100 providers, a group of starts wrote to a page of
-- it for nearly every start it held (one page per provider it started a
-- stream on), with 2 providers to two pages, and a start with 100 providers
-- cost a tenth more. The active counts it was made for are kept in
-- provider_stream_counts; what still asks for a provider's live streams
-- (drains, preemptive moves, the reports' open segments) walks the index of
-- live streams, which now holds their provider and is written, at a start, at
-- its end (the newest heartbeat).
DROP INDEX streams_status_provider;
DROP INDEX streams_heartbeat_active;
CREATE INDEX streams_heartbeat_active ON streams (last_heartbeat, provider) WHERE status = 'active';
