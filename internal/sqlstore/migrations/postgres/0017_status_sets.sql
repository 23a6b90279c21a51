-- 0017_status_sets: the providers' statuses a trail entry was decided on,
-- kept once per distinct set. Every start made on one view of the providers
-- has the same statuses: with 100 providers, writing them into every trail
-- entry (about 2.5 KB) was most of the bytes a start wrote. A trail entry
-- now names its set by digest; entries written before this migration, or
-- written while their set was not yet known to be stored, keep their
-- statuses inline (stream_trail.statuses), and a reader takes whichever is
-- there. A set is committed before any entry names it; sets are never
-- deleted (nor are trail entries).
CREATE TABLE status_sets (
    digest   BYTEA NOT NULL PRIMARY KEY, -- the first 16 bytes of the SHA-256 of statuses
    statuses TEXT NOT NULL              -- JSON object provider -> status
);

ALTER TABLE stream_trail ADD COLUMN statuses_digest BYTEA; -- status_sets.digest, or NULL
