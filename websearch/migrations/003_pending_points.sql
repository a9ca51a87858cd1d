-- Qdrant points that may exist without a chunk row (websearch/pending.py): the points an ingest
-- writes before its chunks commit, and a replaced page's old points until they are deleted. `owner`
-- is the advisory lock key the ingest holds while it runs; a row whose owner holds no lock is what
-- a crash left, removed (points first, then the row) when websearch starts.
CREATE TABLE IF NOT EXISTS pending_points (
    point_id   BIGINT PRIMARY KEY,
    owner      BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
