"""PostgreSQL: pages, chunks and the keyword index. Schema from versioned SQL files, applied at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.errors import NotReady
from websearch.extract import ExtractedPage

CANDIDATE_CAP = 200  # per keyword candidate set
# A word in more than COMMON_SHARE of the chunks and in more than COMMON_CHUNKS chunks does not look for
# candidates (it still counts in the score): ranking every chunk that holds `the` or `的` is what made
# keyword search slow at scale. Small indexes are never affected.
COMMON_SHARE = 0.02
COMMON_CHUNKS = 1000
# The typo-tolerant candidate sets (trigram similarity to chunk text and title) are looked up for queries
# of at most FUZZY_MAX_TERMS words: for longer ones the words suffice, and the trigram index finds
# thousands of rows that share the query's common trigrams, each to be checked at full cost.
FUZZY_MAX_TERMS = 4
FUZZY_FLOOR = 0.6  # pg_trgm.word_similarity_threshold: what a `<%` hit scores at least on text similarity


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    page_id: int
    chunk_index: int
    text: str
    title: str
    url: str
    score: float


class Store:
    def __init__(self, database_url: str, max_connections: int = 10) -> None:
        self.pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=max_connections, open=False, kwargs={"row_factory": dict_row}
        )

    async def open(self) -> None:
        """Start the pool; connections are made in the background (see ``migrate`` to wait for one)."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> None:
        files = sorted(
            (f for f in resources.files("websearch.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(5080)")  # one migrator at a time
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
            )
            applied = {
                row["name"] for row in await (await conn.execute("SELECT name FROM schema_migrations")).fetchall()
            }
            for file in files:
                if file.name not in applied:
                    await conn.execute(file.read_text())
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (file.name,))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        with unavailable_on_failure():
            async with self.pool.connection(timeout=10) as conn:
                yield conn

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def page_hash(self, url: str) -> dict[str, Any] | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT p.id, p.content_hash, p.title, p.published_at, count(c.id) AS chunks "
                "FROM pages p LEFT JOIN chunks c ON c.page_id = p.id WHERE p.url = %s GROUP BY p.id",
                (url,),
            )
            return await cursor.fetchone()

    async def touch(self, url: str) -> None:
        """Mark the page fetched now (its content was fetched again and found unchanged)."""
        async with self.connection() as conn:
            await conn.execute("UPDATE pages SET fetched_at = now() WHERE url = %s", (url,))

    @staticmethod
    async def replace_page(
        conn: psycopg.AsyncConnection[Any],
        url: str,
        page: ExtractedPage,
        html: str,
        chunks: Sequence[tuple[str, str]],
        chunk_ids: Sequence[int],
    ) -> tuple[int, list[int]]:
        """Inside the caller's transaction: upsert the page (same id on re-ingest), replace its chunks by
        ``chunks`` (text, index text) under ``chunk_ids``. Returns (page_id, the old chunk ids)."""
        cursor = await conn.execute(
            "INSERT INTO pages (url, title, site, lang, published_at, fetched_at, content, html, content_hash) "
            "VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s) "
            "ON CONFLICT (url) DO UPDATE SET title = EXCLUDED.title, site = EXCLUDED.site, lang = EXCLUDED.lang, "
            "published_at = EXCLUDED.published_at, fetched_at = now(), content = EXCLUDED.content, "
            "html = EXCLUDED.html, content_hash = EXCLUDED.content_hash RETURNING id",
            (url, page.title, page.site, page.lang, page.published_at, page.content, html, page.content_hash),
        )
        page_id = (await cursor.fetchone())["id"]  # type: ignore[index]
        cursor = await conn.execute("DELETE FROM chunks WHERE page_id = %s RETURNING id", (page_id,))
        old_ids = [row["id"] for row in await cursor.fetchall()]
        async with conn.cursor() as insert:
            await insert.executemany(
                "INSERT INTO chunks (id, page_id, chunk_index, text, tokens) "
                "VALUES (%s, %s, %s, %s, to_tsvector('simple', %s))",
                [
                    (chunk_id, page_id, index, text, index_text)
                    for index, (chunk_id, (text, index_text)) in enumerate(zip(chunk_ids, chunks, strict=True))
                ],
            )
        return page_id, old_ids

    async def keyword_search(self, query: str, terms: list[str], short_cjk: bool, limit: int) -> list[ChunkHit]:
        """Keyword hits, best first. Score: ts_rank_cd + word similarity to the chunk text + 0.3 × word
        similarity to the title (+ 0.5 for a short Chinese query found as a substring).

        Kept cheap on a large index: each candidate set is answered by its own index and capped; common
        words (``the``, ``的``; see COMMON_SHARE) do not look for candidates but still count in the score;
        the trigram sets are looked up for short queries only (FUZZY_MAX_TERMS); candidates are ranked by
        the cheap signals first and only the best ``shortlist_size(limit)`` get the dear trigram
        similarity against their whole text."""
        like = f"%{escape_like(query)}%" if short_cjk else None
        sql = """
            WITH words AS (
                SELECT id FROM chunks WHERE %(find)s <> '' AND tokens @@ to_tsquery('simple', %(find)s)
                ORDER BY ts_rank_cd(tokens, to_tsquery('simple', %(find)s), 32) DESC LIMIT %(cap)s
            ), trigram_hits AS MATERIALIZED (
                -- planned for all its rows, so through the trigram index: under a LIMIT the planner may
                -- bet on a sequential scan meeting enough hits early, and none may come
                SELECT id FROM chunks WHERE %(fuzzy)s AND %(q)s <%% text
            ), trigrams AS (
                SELECT id FROM trigram_hits LIMIT %(cap)s
            ), titles AS (
                SELECT c.id FROM pages p JOIN chunks c ON c.page_id = p.id
                WHERE %(fuzzy)s AND %(q)s <%% p.title LIMIT %(cap)s
            ), substrings AS (
                SELECT id FROM chunks WHERE %(like)s::text IS NOT NULL AND text ILIKE %(like)s LIMIT %(cap)s
            ), candidates AS (
                SELECT id, bool_or(fuzzy) AS fuzzy FROM (
                    SELECT id, false AS fuzzy FROM words UNION ALL SELECT id, true FROM trigrams
                    UNION ALL SELECT id, false FROM titles UNION ALL SELECT id, false FROM substrings
                ) AS found GROUP BY id
            ), cheap AS (
                SELECT c.id,
                       ts_rank_cd(c.tokens, to_tsquery('simple', %(tsq)s), 32)
                       + 0.3 * word_similarity(%(q)s, coalesce(p.title, ''))
                       + CASE WHEN %(like)s::text IS NOT NULL AND c.text ILIKE %(like)s THEN 0.5 ELSE 0 END AS score,
                       candidates.fuzzy
                FROM candidates JOIN chunks c ON c.id = candidates.id JOIN pages p ON p.id = c.page_id
            ), shortlist AS (
                -- a trigram hit scores at least the <%% threshold on text similarity: count it so here
                SELECT id, score FROM cheap
                ORDER BY score + CASE WHEN fuzzy THEN %(fuzzy_floor)s ELSE 0 END DESC, id LIMIT %(shortlist)s
            )
            SELECT c.id AS chunk_id, c.page_id, c.chunk_index, c.text, p.title, p.url,
                   shortlist.score + word_similarity(%(q)s, c.text) AS score
            FROM shortlist JOIN chunks c ON c.id = shortlist.id JOIN pages p ON p.id = c.page_id
            ORDER BY score DESC, c.page_id, c.chunk_index
            LIMIT %(limit)s
        """
        async with self.connection() as conn:
            shares, chunks = await self.word_counts(conn, terms)
            params = {
                "tsq": " | ".join(terms),
                "find": " | ".join(selective_terms(terms, shares, chunks)),
                "q": query,
                "like": like,
                "limit": limit,
                "cap": max(limit, CANDIDATE_CAP),
                "shortlist": shortlist_size(limit),
                "fuzzy_floor": FUZZY_FLOOR,
                "fuzzy": len(terms) <= FUZZY_MAX_TERMS,
            }
            # Never a prepared statement: a generic plan cannot fold the tsqueries and the LIKE pattern into
            # constants (they are parsed again for every row) and loses the estimates that pick the indexes.
            cursor = await conn.execute(sql, params, prepare=False)
            return [ChunkHit(**row) for row in await cursor.fetchall()]

    @staticmethod
    async def word_counts(conn: psycopg.AsyncConnection[Any], terms: list[str]) -> tuple[dict[str, float], float]:
        """(share of the chunks holding each word, number of chunks), from PostgreSQL's statistics: the
        words ``ANALYZE`` lists as most common (about a thousand; words not listed are rarer than those)
        and the table's row estimate. Before the first ``ANALYZE`` (autovacuum's) there is nothing."""
        if not terms:
            return {}, 0.0
        cursor = await conn.execute(
            "SELECT common.word, common.share, c.reltuples FROM pg_stats AS s "
            "JOIN pg_class AS c ON c.oid = 'chunks'::regclass, "
            "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS common(word, share) "
            "WHERE s.schemaname = current_schema() AND s.tablename = 'chunks' AND s.attname = 'tokens' "
            "AND common.word = ANY(%s)",
            (terms,),
        )
        rows = await cursor.fetchall()
        chunks = max((float(row["reltuples"]) for row in rows), default=0.0)
        return {row["word"]: float(row["share"]) for row in rows}, chunks

    async def chunks_by_id(self, ids: Sequence[int]) -> dict[int, ChunkHit]:
        if not ids:
            return {}
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT c.id AS chunk_id, c.page_id, c.chunk_index, c.text, p.title, p.url, 0.0::float AS score "
                "FROM chunks c JOIN pages p ON p.id = c.page_id WHERE c.id = ANY(%s)",
                (list(ids),),
            )
            return {row["chunk_id"]: ChunkHit(**row) for row in await cursor.fetchall()}

    async def page(self, *, url: str | None = None, page_id: int | None = None) -> dict[str, Any] | None:
        column, value = ("url", url) if url is not None else ("id", page_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, url, title, site, lang, published_at, fetched_at, content, html "
                f"FROM pages WHERE {column} = %s",
                (value,),
            )
            return await cursor.fetchone()

    async def counts(self) -> tuple[int, int]:
        async with self.connection() as conn:
            row = await (
                await conn.execute("SELECT (SELECT count(*) FROM pages) AS p, (SELECT count(*) FROM chunks) AS c")
            ).fetchone()
            return int(row["p"]), int(row["c"])  # type: ignore[index]


@contextmanager
def unavailable_on_failure() -> Iterator[None]:
    """A lost or refused connection as ``NotReady`` (503)."""
    try:
        yield
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise NotReady(
            f"PostgreSQL is unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc


def shortlist_size(limit: int) -> int:
    """How many of the best candidates by the cheap signals get the trigram similarity to their text."""
    return max(40, 2 * limit)


def selective_terms(terms: list[str], shares: dict[str, float], chunks: float) -> list[str]:
    """The query words that look for candidates: all but the common ones (see COMMON_SHARE); if every
    word is common, the least common one."""

    def common(term: str) -> bool:
        share = shares.get(term, 0.0)
        return share > COMMON_SHARE and share * chunks > COMMON_CHUNKS

    selective = [term for term in terms if not common(term)]
    if selective or not terms:
        return selective
    return [min(terms, key=lambda term: shares[term])]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
