"""Web search: a question → the backend's result URLs → their pages, fetched through the safe fetcher
concurrently under one deadline (a page fetched within ``web_fresh_s`` is reused from the store) → ingested by
the usual pipeline → the chunks of those pages ranked against the question by the hybrid ranking, best chunk
per page. One slow, broken or refused page lands in ``failed`` and never fails the search."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from services.errors import LingxiError
from websearch import tokens
from websearch.backends import SearchBackend, WebResult
from websearch.config import Settings
from websearch.extract import ExtractedPage
from websearch.index import Hit, WebIndex, fuse
from websearch.snippets import snippet
from websearch.store import ChunkHit, escape_like, isoformat

FRESH_PAGES = """
    SELECT id, url, title, published_at, content FROM pages
    WHERE url = ANY(%(urls)s) AND fetched_at > now() - make_interval(secs => %(fresh)s)
"""
# Store.keyword_search's score, for every chunk of the given pages (a handful of pages: no candidate sets)
KEYWORD_WITHIN = """
    SELECT c.id AS chunk_id, c.page_id, c.chunk_index, c.text, p.title, p.url,
           CASE WHEN %(tsq)s = '' THEN 0 ELSE ts_rank_cd(c.tokens, to_tsquery('simple', %(tsq)s), 32) END
           + word_similarity(%(q)s, c.text) + 0.3 * word_similarity(%(q)s, coalesce(p.title, ''))
           + CASE WHEN %(like)s::text IS NOT NULL AND c.text ILIKE %(like)s THEN 0.5 ELSE 0 END AS score
    FROM chunks c JOIN pages p ON p.id = c.page_id
    WHERE c.page_id = ANY(%(pages)s)
    ORDER BY score DESC, c.page_id, c.chunk_index
"""


@dataclass(frozen=True)
class StoredPage:
    page_id: int | None  # None: fetched but could not be stored (the loader still has its text)
    title: str
    published_at: str | None
    content: str


class WebSearch:
    def __init__(self, settings: Settings, index: WebIndex, backend: SearchBackend) -> None:
        self.settings = settings
        self.index = index
        self.backend = backend

    async def search(self, query: str, limit: int, lang: str | None) -> dict[str, Any]:
        vector = asyncio.create_task(self.index.embed([query], "query"))  # meanwhile the web is searched
        try:
            found = await self.backend.search(query, limit=limit, lang=lang)
            pages, failed = await self.pages([result.url for result in found], need_stored=True)
            ranked = await self.rank(
                query, [page.page_id for page in pages.values() if page.page_id], (await vector)[0]
            )
        finally:
            vector.cancel()
        terms = [query.strip(), *tokens.query_terms(query)]
        by_url = {result.url: result for result in found}
        results = [self._result(hit, pages[hit.chunk.url], by_url[hit.chunk.url], terms) for hit in ranked]
        return {"query": query, "results": results, "failed": [{"url": u, "error": e} for u, e in failed.items()]}

    @staticmethod
    def _result(hit: Hit, page: StoredPage, found: WebResult, terms: list[str]) -> dict[str, Any]:
        return {
            "title": page.title or found.title,
            "url": found.url,
            "snippet": snippet(hit.chunk.text, terms),
            "page_id": hit.chunk.page_id,
            "score": round(hit.score, 6),
            "published_at": page.published_at or found.published_at,
        }

    async def load(self, urls: list[str]) -> list[dict[str, Any]]:
        """Open WebUI's external web loader: each page's text (pages that fail are left out)."""
        pages, _ = await self.pages(urls, need_stored=False)
        return [
            {"page_content": pages[url].content, "metadata": {"source": url, "title": pages[url].title}}
            for url in dict.fromkeys(urls)
            if url in pages
        ]

    async def pages(self, urls: list[str], *, need_stored: bool) -> tuple[dict[str, StoredPage], dict[str, str]]:
        """The pages of ``urls``: fresh ones from the store, the others fetched (under one deadline) and
        ingested. With ``need_stored`` a page that could not be stored counts as failed. Returns (pages by
        URL, the error of each URL that failed)."""
        urls = list(dict.fromkeys(urls))
        async with self.index.store.connection() as conn:
            cursor = await conn.execute(FRESH_PAGES, {"urls": urls, "fresh": self.settings.web_fresh_s})
            fresh = {row["url"]: row for row in await cursor.fetchall()}
        pages = {
            url: StoredPage(row["id"], row["title"] or "", isoformat(row["published_at"]), row["content"])
            for url, row in fresh.items()
        }
        fetched, failed = await self.fetch_all([url for url in urls if url not in fresh])
        stored = await self.index.store_pages(fetched)
        for url, page in fetched.items():
            outcome = stored[url]
            if isinstance(outcome, LingxiError):
                if need_stored:
                    failed[url] = outcome.message
                    continue
                pages[url] = StoredPage(None, page.title, isoformat(page.published_at), page.content)
            else:
                pages[url] = StoredPage(outcome["page_id"], page.title, outcome["published_at"], page.content)
        ordered_failures = {url: failed[url] for url in urls if url in failed}
        return {url: pages[url] for url in urls if url in pages}, ordered_failures

    async def fetch_all(self, urls: list[str]) -> tuple[dict[str, ExtractedPage], dict[str, str]]:
        """Fetch and extract ``urls`` at once through the safe fetcher, all within ``web_fetch_deadline_s``."""
        if not urls:
            return {}, {}
        tasks = {url: asyncio.create_task(self.index.fetch_page(url)) for url in urls}
        deadline = self.settings.web_fetch_deadline_s
        _, late = await asyncio.wait(tasks.values(), timeout=deadline)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        pages: dict[str, ExtractedPage] = {}
        failed: dict[str, str] = {}
        for url, task in tasks.items():
            if task in late:
                failed[url] = f"not fetched within the {deadline:g} s deadline of a web search"
            elif isinstance(task.exception(), LingxiError):
                failed[url] = task.exception().message  # type: ignore[union-attr]
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            else:
                pages[url] = task.result()
        return pages, failed

    async def rank(self, query: str, page_ids: list[int], vector: list[float]) -> list[Hit]:
        """The best chunk of each page, pages ordered by it: the hybrid ranking (min-max, alpha 0.7) over
        every chunk of ``page_ids``."""
        if not page_ids:
            return []
        terms = await asyncio.to_thread(tokens.query_terms, query)
        short_cjk = tokens.has_cjk(query) and len(query.strip()) <= 2
        params = {
            "tsq": " | ".join(terms),
            "q": query.strip(),
            "like": f"%{escape_like(query.strip())}%" if short_cjk else None,
            "pages": page_ids,
        }
        async with self.index.store.connection() as conn:
            cursor = await conn.execute(KEYWORD_WITHIN, params, prepare=False)
            keyword = [Hit(ChunkHit(**row), row["score"], "keyword") for row in await cursor.fetchall()]
        await self.index.check_index(len(vector))
        chunks = {hit.chunk.chunk_id: hit.chunk for hit in keyword}
        scored = await self.index.vectors.search_among(vector, list(chunks))
        semantic = [Hit(chunks[i], score, "semantic") for i, score in scored if i in chunks]
        best: dict[int, Hit] = {}
        for hit in fuse(semantic, keyword, len(chunks), alpha=0.7, fusion="minmax"):
            best.setdefault(hit.chunk.page_id, hit)
        return list(best.values())
