-- 0014_degradations: the periods the degradation detector flagged a
-- provider as degrading, for the SLA report (how early, and how often
-- falsely, failures were predicted). ended_at is NULL while it lasts; the
-- lead before a CRITICAL that followed is read against the transitions. No
-- foreign key: a report of a past month still shows a deleted provider.
CREATE TABLE degradations (
    id         INTEGER NOT NULL PRIMARY KEY,
    provider   TEXT    NOT NULL,
    region     TEXT    NOT NULL DEFAULT '',
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    evidence   TEXT    NOT NULL -- JSON array of switchboard.DegradationEvidence
) STRICT;

CREATE INDEX degradations_started ON degradations (started_at);
-- At most one open record per provider and region.
CREATE UNIQUE INDEX degradations_open ON degradations (provider, region) WHERE ended_at IS NULL;
