"""Keyword search on an index large enough for its cost rules to apply (common words, shortlist)."""

from __future__ import annotations

import asyncio

import pytest

from services.postgres import LocalPostgres
from websearch import tokens
from websearch.store import COMMON_CHUNKS, ChunkHit, Store, selective_terms

FILLER = COMMON_CHUNKS + 500  # chunks that all hold "the": a common word by both rules


@pytest.fixture(scope="module")
def big_index(local_postgres) -> str:
    """A database of its own: FILLER chunks of weather reports, two about pandas, analysed."""
    database = LocalPostgres(local_postgres.data_dir, port=local_postgres.port, database="common_words")
    database.start()

    async def build() -> None:
        store = Store(database.url)
        await store.pool.open(wait=True)
        try:
            await store.migrate()
            async with store.connection() as conn:
                await conn.execute(
                    "INSERT INTO pages (url, title, content, content_hash) SELECT 'https://weather.invalid/' || n, "
                    "'Weather report ' || n, '', '' FROM generate_series(1, %s) AS n",
                    (FILLER,),
                )
                await conn.execute(
                    "INSERT INTO chunks (page_id, chunk_index, text, tokens) SELECT id, 0, t, to_tsvector('simple', t) "
                    "FROM (SELECT id, 'the weather report for the day number ' || id AS t FROM pages) AS reports"
                )
                for url, text in [
                    ("https://zoo.invalid/panda", "the giant panda eats bamboo in the mountains of Sichuan"),
                    ("https://zoo.invalid/red-panda", "the red panda is not a bear"),
                ]:
                    page = await conn.execute(
                        "INSERT INTO pages (url, title, content, content_hash) VALUES (%s, 'Zoo', %s, '') RETURNING id",
                        (url, text),
                    )
                    page_id = (await page.fetchone())["id"]  # type: ignore[index]
                    await conn.execute(
                        "INSERT INTO chunks (page_id, chunk_index, text, tokens) "
                        "VALUES (%s, 0, %s, to_tsvector('simple', %s))",
                        (page_id, text, tokens.index_text(text)),
                    )
                await conn.execute("ANALYZE chunks")  # what autovacuum does on its own a minute later
        finally:
            await store.close()

    asyncio.run(build())
    return database.url


def search(url: str, query: str, limit: int = 5) -> tuple[list[ChunkHit], dict[str, float], float]:
    async def run() -> tuple[list[ChunkHit], dict[str, float], float]:
        store = Store(url)
        await store.pool.open(wait=True)
        try:
            terms = tokens.query_terms(query)
            hits = await store.keyword_search(query, terms, False, limit)
            async with store.connection() as conn:
                shares, chunks = await store.word_counts(conn, terms)
            return hits, shares, chunks
        finally:
            await store.close()

    return asyncio.run(run())


def test_a_common_word_does_not_crowd_out_the_rare_one(big_index):
    hits, shares, chunks = search(big_index, "the giant panda")
    assert shares["the"] > 0.9 and chunks > COMMON_CHUNKS  # ANALYZE's statistics are read
    assert selective_terms(["the", "giant", "panda"], shares, chunks) == ["giant", "panda"]
    assert hits[0].url == "https://zoo.invalid/panda"
    assert {hit.url for hit in hits[:2]} == {"https://zoo.invalid/panda", "https://zoo.invalid/red-panda"}


def test_a_query_of_common_words_only_still_finds_chunks(big_index):
    hits, _, _ = search(big_index, "the", limit=3)
    assert len(hits) == 3 and all("the" in hit.text for hit in hits)


def test_long_queries_skip_the_trigram_sets_but_still_find_by_words(big_index):
    hits, _, _ = search(big_index, "which animal eats bamboo up in the mountains")
    assert hits[0].url == "https://zoo.invalid/panda"


def test_which_words_look_for_candidates():
    assert selective_terms(["the", "panda"], {"the": 0.9, "panda": 0.5}, chunks=200) == ["the", "panda"]  # small
    assert selective_terms(["the", "panda"], {}, chunks=0) == ["the", "panda"]  # never analysed
    assert selective_terms(["the", "panda"], {"the": 0.9, "panda": 0.001}, chunks=100_000) == ["panda"]
    assert selective_terms(["the", "panda"], {"the": 0.9, "panda": 0.5}, chunks=10_000) == ["panda"]  # least common
    assert selective_terms([], {}, chunks=10_000) == []
