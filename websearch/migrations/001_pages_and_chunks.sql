-- Pages and their chunks. Keyword search: pg_trgm on the text (Latin words, typos) and a `simple`
-- tsvector over jieba-segmented text (Chinese and English words).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE IF NOT EXISTS pages (
    id           BIGSERIAL PRIMARY KEY,
    url          TEXT NOT NULL UNIQUE,
    title        TEXT,
    site         TEXT,
    lang         TEXT,
    published_at TIMESTAMPTZ,
    fetched_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    content      TEXT NOT NULL,
    html         TEXT,
    content_hash TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS chunks (
    id          BIGSERIAL PRIMARY KEY,
    page_id     BIGINT NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    chunk_index INTEGER NOT NULL,
    text        TEXT NOT NULL,
    tokens      TSVECTOR NOT NULL,
    UNIQUE (page_id, chunk_index)
);

CREATE INDEX IF NOT EXISTS chunks_text_trgm ON chunks USING GIN (text gin_trgm_ops);
CREATE INDEX IF NOT EXISTS chunks_tokens ON chunks USING GIN (tokens);
CREATE INDEX IF NOT EXISTS pages_title_trgm ON pages USING GIN (title gin_trgm_ops);
