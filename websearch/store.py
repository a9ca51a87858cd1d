"""PostgreSQL: pages, chunks and the keyword index. Schema from versioned SQL files, applied at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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
        try:
            async with self.pool.connection(timeout=10) as conn:
                yield conn
        except (psycopg.OperationalError, TimeoutError) as exc:
            raise NotReady(
                f"PostgreSQL is unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc

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

    @staticmethod
    async def replace_page(
        conn: psycopg.AsyncConnection[Any],
        url: str,
        page: ExtractedPage,
        html: str,
        chunks: Sequence[tuple[str, str]],
    ) -> tuple[int, list[int], list[int]]:
        """Inside the caller's transaction: upsert the page (same id on re-ingest), replace its chunks.
        Returns (page_id, new chunk ids, old chunk ids)."""
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
        new_ids = []
        for index, (text, index_text) in enumerate(chunks):
            cursor = await conn.execute(
                "INSERT INTO chunks (page_id, chunk_index, text, tokens) "
                "VALUES (%s, %s, %s, to_tsvector('simple', %s)) RETURNING id",
                (page_id, index, text, index_text),
            )
            new_ids.append((await cursor.fetchone())["id"])  # type: ignore[index]
        return page_id, new_ids, old_ids

    async def keyword_search(self, query: str, terms: list[str], short_cjk: bool, limit: int) -> list[ChunkHit]:
        tsquery = " | ".join(terms)
        like = f"%{escape_like(query)}%" if short_cjk else None
        # Each candidate set is answered by its own index and capped, so that a very common word costs no
        # more than a rare one; only the union of the caps gets the (dearer) trigram scoring.
        sql = """
            WITH words AS (
                SELECT id FROM chunks WHERE %(tsq)s <> '' AND tokens @@ to_tsquery('simple', %(tsq)s)
                ORDER BY ts_rank_cd(tokens, to_tsquery('simple', %(tsq)s), 32) DESC LIMIT %(cap)s
            ), trigrams AS (
                SELECT id FROM chunks WHERE %(q)s <%% text LIMIT %(cap)s
            ), titles AS (
                SELECT c.id FROM pages p JOIN chunks c ON c.page_id = p.id WHERE %(q)s <%% p.title LIMIT %(cap)s
            ), substrings AS (
                SELECT id FROM chunks WHERE %(like)s::text IS NOT NULL AND text ILIKE %(like)s LIMIT %(cap)s
            ), candidates AS (
                SELECT id FROM words UNION SELECT id FROM trigrams
                UNION SELECT id FROM titles UNION SELECT id FROM substrings
            )
            SELECT c.id AS chunk_id, c.page_id, c.chunk_index, c.text, p.title, p.url,
                   ts_rank_cd(c.tokens, to_tsquery('simple', %(tsq)s), 32)
                   + word_similarity(%(q)s, c.text)
                   + 0.3 * word_similarity(%(q)s, coalesce(p.title, ''))
                   + CASE WHEN %(like)s::text IS NOT NULL AND c.text ILIKE %(like)s THEN 0.5 ELSE 0 END AS score
            FROM candidates JOIN chunks c ON c.id = candidates.id JOIN pages p ON p.id = c.page_id
            ORDER BY score DESC, c.page_id, c.chunk_index
            LIMIT %(limit)s
        """
        async with self.connection() as conn:
            params = {"tsq": tsquery, "q": query, "like": like, "limit": limit, "cap": max(limit, CANDIDATE_CAP)}
            cursor = await conn.execute(sql, params)
            return [ChunkHit(**row) for row in await cursor.fetchall()]

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


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
