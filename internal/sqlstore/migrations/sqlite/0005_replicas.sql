-- 0005_replicas: the tables through which replicas sharing a PostgreSQL
-- database coordinate. A SQLite database serves one node, which needs none of
-- them: this migration only keeps the versions of both dialects in step.
SELECT 1;
