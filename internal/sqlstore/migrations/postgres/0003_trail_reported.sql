-- 0003_trail_reported: when a client reported a move it had already made.
--
-- A client that fails over to its standby assignment connects first and tells
-- the control plane afterwards, possibly much later (the control plane may have
-- been down). The trail entry's `at` is when the move happened; reported_at is
-- when the control plane learnt of it (NULL: at the same time).
ALTER TABLE stream_trail ADD COLUMN reported_at BIGINT;
