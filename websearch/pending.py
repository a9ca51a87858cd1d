"""Crash-consistent ingest: PostgreSQL and Qdrant never disagree about a page that searches can see.

One page is written in this order (``WebIndex.ingest``):

1. ``IngestLease.reserve``: the new chunk ids are noted in ``pending_points`` and committed, owned by
   a key whose advisory lock the ingest holds on its connection for as long as it runs;
2. the vectors go to Qdrant under those ids;
3. ``IngestLease.commit_page``, one transaction: the page row and its new chunks replace the old
   ones; the new ids leave ``pending_points``, the old chunk ids join it;
4. the old points are deleted from Qdrant, then their rows from ``pending_points``.

Searches see chunk rows only (a semantic hit is joined to its row), so a page is searchable both
ways from the commit of step 3, and not at all before (a re-ingested page: its old version until
then). SIGKILL at any moment leaves at most ``pending_points`` rows whose owner holds no lock, and
their points: ``reconcile``, when websearch starts, deletes those points and rows, deletes points
that belong to no chunk and no running ingest, and embeds again chunks that have no point.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from websearch.extract import ExtractedPage
from websearch.store import Store, unavailable_on_failure
from websearch.vectors import VectorStore

log = logging.getLogger("lingxi.websearch")

Embed = Callable[[list[str], str], Awaitable[list[list[float]]]]
REEMBED_BATCH = 256  # chunks read and embedded again at once by ``reconcile``

# An owner's advisory lock, as pg_locks shows a one-bigint key: classid the high 32 bits, objid the low ones.
LIVE_OWNER = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND (l.classid::bigint << 32 | l.objid::bigint) = pending_points.owner)"
)


class IngestLease:
    """One ingest's connection, holding the advisory lock that owns its pending points."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], owner: int) -> None:
        self.conn = conn
        self.owner = owner

    async def reserve(self, count: int) -> list[int]:
        """``count`` new chunk ids, committed as this ingest's pending points before any vector is written."""
        with unavailable_on_failure():
            async with self.conn.transaction():
                cursor = await self.conn.execute(
                    "INSERT INTO pending_points (point_id, owner) "
                    "SELECT nextval(pg_get_serial_sequence('chunks', 'id')), %s FROM generate_series(1, %s) "
                    "RETURNING point_id",
                    (self.owner, count),
                )
                return sorted(row["point_id"] for row in await cursor.fetchall())

    async def commit_page(
        self, url: str, page: ExtractedPage, html: str, chunks: Sequence[tuple[str, str]], chunk_ids: Sequence[int]
    ) -> tuple[int, list[int]]:
        """The page and its chunks, visible at once; returns (page id, the old chunk ids, now pending)."""
        with unavailable_on_failure():
            async with self.conn.transaction():
                page_id, old_ids = await Store.replace_page(self.conn, url, page, html, chunks, chunk_ids)
                await self.conn.execute("DELETE FROM pending_points WHERE point_id = ANY(%s)", (list(chunk_ids),))
                await self.conn.execute(
                    "INSERT INTO pending_points (point_id, owner) SELECT unnest(%s::bigint[]), %s",
                    (old_ids, self.owner),
                )
        return page_id, old_ids

    async def release(self, point_ids: Sequence[int]) -> None:
        """Those points are gone from Qdrant: forget them."""
        with unavailable_on_failure():
            async with self.conn.transaction():
                await self.conn.execute("DELETE FROM pending_points WHERE point_id = ANY(%s)", (list(point_ids),))


@asynccontextmanager
async def ingest_lease(store: Store) -> AsyncIterator[IngestLease]:
    async with store.connection() as conn:
        owner = secrets.randbits(63)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_lock(%s)", (owner,))  # a session lock: it outlives commits
        try:
            yield IngestLease(conn, owner)
        finally:
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (owner,))
            except psycopg.Error:  # the connection is broken, and the lock went with it
                pass


@dataclass
class Repairs:
    unfinished: int = 0  # points of ingests that did not finish (or old points not yet deleted), removed
    orphans: int = 0  # points that belonged to no chunk, removed
    reembedded: int = 0  # chunks that had no point, embedded again

    def __bool__(self) -> bool:
        return bool(self.unfinished or self.orphans or self.reembedded)


async def reconcile(store: Store, vectors: VectorStore, embed: Embed) -> Repairs:
    """Make Qdrant hold exactly one point per chunk row (see the module's notes); safe beside running
    ingests, here or on other replicas. Raises ``NotReady`` when a dependency is down (call again)."""
    repairs = Repairs()
    async with store.connection() as conn:
        cursor = await conn.execute(f"SELECT point_id FROM pending_points WHERE NOT {LIVE_OWNER}")
        stale = [row["point_id"] for row in await cursor.fetchall()]
    if stale:
        await vectors.delete(stale)  # a pending id never has a chunk row: its point is of no page
        async with store.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM pending_points WHERE point_id = ANY(%s)", (stale,))
        repairs.unfinished = len(stale)

    points = await vectors.ids()  # before the rows: a point written meanwhile has its pending row already
    async with store.connection() as conn:  # one statement, one snapshot: a point is a chunk's or pending
        cursor = await conn.execute(
            "SELECT id, true AS chunk FROM chunks UNION ALL SELECT point_id, false FROM pending_points"
        )
        rows = await cursor.fetchall()
    chunks = {row["id"] for row in rows if row["chunk"]}
    orphans = sorted(points - {row["id"] for row in rows})
    if orphans:
        await vectors.delete(orphans)
        repairs.orphans = len(orphans)

    missing = sorted(chunks - points)
    for start in range(0, len(missing), REEMBED_BATCH):
        batch = missing[start : start + REEMBED_BATCH]
        async with store.connection() as conn:
            cursor = await conn.execute(
                "SELECT c.id, c.text, c.chunk_index, p.url, p.title FROM chunks c JOIN pages p ON p.id = c.page_id "
                "WHERE c.id = ANY(%s) ORDER BY c.id",
                (batch,),
            )
            rows = await cursor.fetchall()
        if rows:
            embedded = await embed([row["text"] for row in rows], "document")
            payloads = [{"url": r["url"], "title": r["title"], "chunk_index": r["chunk_index"]} for r in rows]
            await vectors.upsert([row["id"] for row in rows], embedded, payloads)
            repairs.reembedded += len(rows)
    return repairs
