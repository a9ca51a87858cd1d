"""The web index: ingest (fetch → extract → chunk → embed → PostgreSQL + Qdrant) and the three searches."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from services.clients import EmbeddingClient
from services.errors import LingxiError, NotReady, Unprocessable, UnsupportedMediaType
from services.fetch import SafeFetcher
from websearch import tokens
from websearch.chunking import chunk_text
from websearch.config import Settings
from websearch.extract import HTML_TYPES, TEXT_TYPES, ExtractedPage, extract
from websearch.pending import IngestLease, Repairs, ingest_lease, reconcile
from websearch.snippets import snippet
from websearch.store import ChunkHit, Store, isoformat
from websearch.vectors import IndexMismatch, VectorStore

log = logging.getLogger("lingxi.websearch")


@dataclass(frozen=True)
class Hit:
    chunk: ChunkHit
    score: float
    mode: str


class WebIndex:
    def __init__(self, settings: Settings, store: Store, vectors: VectorStore, embedder: EmbeddingClient) -> None:
        self.settings = settings
        self.store = store
        self.vectors = vectors
        self.embedder = embedder
        self.embedding_model: str | None = None  # what the embedding service serves, learnt from its /health
        self.embedding_dimension: int | None = None
        self.fetcher = SafeFetcher(
            allowed_hosts=settings.allowed_hosts, timeout_s=settings.fetch_timeout_s, max_bytes=settings.fetch_max_bytes
        )

    async def close(self) -> None:
        await self.fetcher.aclose()

    # --- embeddings -----------------------------------------------------------------------------
    async def embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        vectors: list[list[float]] = []
        step = self.settings.embedding_batch
        for start in range(0, len(texts), step):
            try:
                batch = await self.embedder.embed(
                    texts[start : start + step], input_type=input_type, model=self.settings.embedding_model
                )
            except LingxiError as exc:
                if exc.status_code in (502, 503, 504):
                    raise NotReady(f"embedding service unavailable: {exc.message}") from exc
                raise
            vectors.extend(batch)
        return vectors

    # --- ingest ---------------------------------------------------------------------------------
    async def ingest(self, url: str) -> dict[str, Any]:
        return await self.store_page(url, await self.fetch_page(url))

    async def fetch_page(self, url: str) -> ExtractedPage:
        """Fetch ``url`` through the safe fetcher and extract its text."""
        resource = await self.fetcher.fetch(url)
        if resource.content_type not in HTML_TYPES | TEXT_TYPES:
            kind = resource.content_type or "no content type"
            raise UnsupportedMediaType(f"{url} is {kind}; only HTML, XHTML and plain text pages can be ingested")
        page = await asyncio.to_thread(extract, resource.content, resource.content_type, resource.charset, url)
        if not page.content.strip():
            raise Unprocessable(f"no text could be extracted from {url}")
        return page

    async def store_page(self, url: str, page: ExtractedPage) -> dict[str, Any]:
        outcome = (await self.store_pages({url: page}))[url]
        if isinstance(outcome, LingxiError):
            raise outcome
        return outcome

    async def store_pages(self, pages: dict[str, ExtractedPage]) -> dict[str, dict[str, Any] | LingxiError]:
        """Chunk, embed and store fetched pages, each page's outcome or error. A page whose content is
        unchanged is not written again, only marked fetched now. The chunks of all pages are embedded
        together: the embedding service answers one request of many texts sooner than one request per page."""
        outcomes: dict[str, dict[str, Any] | LingxiError] = {}
        changed: dict[str, list[str]] = {}
        for url, page in pages.items():
            existing = await self.store.page_hash(url)
            if existing and existing["content_hash"] == page.content_hash:
                await self.store.touch(url)
                outcomes[url] = self._result(
                    url, existing["id"], existing["chunks"], page.title, page.published_at, unchanged=True
                )
            else:
                changed[url] = chunk_text(page.content, self.settings.chunk_chars, self.settings.chunk_overlap_chars)
        if not changed:
            return outcomes
        texts = [text for chunks in changed.values() for text in chunks]
        try:
            index_texts = await asyncio.to_thread(lambda: [tokens.index_text(t) for t in texts])
            vectors = await self.embed(texts, "document")
            await self.check_index(len(vectors[0]))  # never mix vectors of two models in one collection
        except LingxiError as exc:
            return outcomes | {url: exc for url in changed}
        writes, start = [], 0
        for url, chunks in changed.items():
            end = start + len(chunks)
            writes.append(self._write(url, pages[url], chunks, index_texts[start:end], vectors[start:end]))
            start = end
        for url, outcome in zip(changed, await asyncio.gather(*writes, return_exceptions=True), strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, LingxiError):
                raise outcome
            outcomes[url] = outcome
        return outcomes

    async def _write(
        self, url: str, page: ExtractedPage, texts: list[str], index_texts: list[str], vectors: list[list[float]]
    ) -> dict[str, Any]:
        html = page.html[: self.settings.max_html_chars]
        chunks = list(zip(texts, index_texts, strict=True))
        payloads = [{"url": url, "title": page.title, "chunk_index": i} for i in range(len(texts))]
        async with ingest_lease(self.store) as lease:  # the order of writes: see websearch/pending.py
            new_ids = await lease.reserve(len(texts))
            try:
                await self.vectors.upsert(new_ids, vectors, payloads)
                page_id, old_ids = await lease.commit_page(url, page, html, chunks, new_ids)
            except LingxiError:
                await self._forget_points(lease, new_ids)
                raise
            await self._forget_points(lease, old_ids)
        return self._result(url, page_id, len(new_ids), page.title, page.published_at)

    async def _forget_points(self, lease: IngestLease, ids: list[int]) -> None:
        """Delete points that belong to no chunk (any more); what cannot be deleted now stays pending, for
        the next start-up's reconcile."""
        if not ids:
            return
        try:
            await self.vectors.delete(ids)
            await lease.release(ids)
        except LingxiError as exc:
            log.warning("%d points of no chunk stay until websearch starts again: %s", len(ids), exc.message)

    async def reconcile_when_reachable(self) -> Repairs:
        """Repair what a crash left in PostgreSQL and Qdrant (websearch/pending.py), trying again while a
        dependency is down (/health says which)."""
        delay = 0.5
        while True:
            try:
                await self._embedding_model()  # the collection must be this model's before anything is repaired
                if self.embedding_dimension:
                    await self.check_index(self.embedding_dimension)
                repairs = await reconcile(self.store, self.vectors, self.embed)
                break
            except IndexMismatch as exc:  # /health reports it; another model's vectors are left untouched
                log.error("not repairing the index: %s", exc.message)
                return Repairs()
            except LingxiError as exc:
                log.info("cannot check the index yet: %s", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        if repairs:
            log.warning(
                "repaired the index: removed %d points of unfinished ingests and %d of no chunk; "
                "embedded %d chunks again",
                repairs.unfinished,
                repairs.orphans,
                repairs.reembedded,
            )
        return repairs

    @staticmethod
    def _result(
        url: str, page_id: int, chunks: int, title: str, published: Any, unchanged: bool = False
    ) -> dict[str, Any]:
        result = {
            "chunks": chunks,
            "page_id": page_id,
            "published_at": isoformat(published),
            "title": title,
            "url": url,
        }
        if unchanged:
            result["unchanged"] = True
        return result

    async def bulk_ingest(self, urls: list[str]) -> list[dict[str, Any]]:
        gate = asyncio.Semaphore(self.settings.bulk_concurrency)

        async def one(url: str) -> dict[str, Any]:
            async with gate:
                try:
                    return {"ok": True, **await self.ingest(url)}
                except LingxiError as exc:
                    return {"ok": False, "url": url, "error": exc.message, "status": exc.status_code}

        return list(await asyncio.gather(*(one(url) for url in urls)))

    # --- search ---------------------------------------------------------------------------------
    async def keyword(self, query: str, limit: int) -> list[Hit]:
        terms = await asyncio.to_thread(tokens.query_terms, query)
        short_cjk = tokens.has_cjk(query) and len(query.strip()) <= 2
        hits = await self.store.keyword_search(query.strip(), terms, short_cjk, limit)
        return [Hit(hit, hit.score, "keyword") for hit in hits]

    async def semantic(self, query: str, limit: int) -> list[Hit]:
        [vector] = await self.embed([query], "query")
        await self.check_index(len(vector))
        scored = await self.vectors.search(vector, limit)
        chunks = await self.store.chunks_by_id([point_id for point_id, _ in scored])
        return [Hit(chunks[i], score, "semantic") for i, score in scored if i in chunks]

    async def hybrid(self, query: str, limit: int, alpha: float, fusion: str) -> list[Hit]:
        pool = max(limit, self.settings.hybrid_candidates)
        semantic, keyword = await asyncio.gather(self.semantic(query, pool), self.keyword(query, pool))
        return fuse(semantic, keyword, limit, alpha, fusion)

    def shape(self, hits: list[Hit], query: str) -> list[dict[str, Any]]:
        terms = [query.strip(), *tokens.query_terms(query)]
        return [
            {
                "chunk_index": hit.chunk.chunk_index,
                "score": round(hit.score, 6),
                "score_hint": hit.mode,
                "snippet": snippet(hit.chunk.text, terms),
                "title": hit.chunk.title,
                "url": hit.chunk.url,
            }
            for hit in hits
        ]

    async def health(self) -> dict[str, str]:
        """Each dependency: "ok" or what is wrong."""
        checks = {"postgres": self.store.ping(), "qdrant": self.vectors.ping(), "embedding": self._embedding_model()}
        results = await asyncio.gather(*checks.values(), return_exceptions=True)
        report = {
            name: "ok" if not isinstance(result, BaseException) else getattr(result, "message", type(result).__name__)
            for name, result in zip(checks, results, strict=True)
        }
        if report["qdrant"] == report["embedding"] == "ok" and self.embedding_dimension:
            try:  # the collection was built with the model the embedding service serves
                await self.check_index(self.embedding_dimension)
                report["index"] = "ok"
            except LingxiError as exc:
                report["index"] = exc.message
        return report

    async def check_index(self, dimension: int) -> None:
        await self.vectors.check(self.embedding_model or await self._embedding_model(), dimension)

    async def _embedding_model(self) -> str:
        """The name and dimension of the model the embedding service serves, from its /health."""
        body = await self.embedder.get_json("/health")
        self.embedding_model = str(body.get("model") or self.settings.embedding_model or "unknown")
        dimension = body.get("embedding_dimension")
        self.embedding_dimension = dimension if isinstance(dimension, int) else None
        return self.embedding_model


def fuse(semantic: list[Hit], keyword: list[Hit], limit: int, alpha: float, fusion: str) -> list[Hit]:
    """The hybrid ranking: per-query min-max normalised ``alpha·semantic + (1−alpha)·keyword``, or weighted RRF."""
    by_id = {hit.chunk.chunk_id: hit.chunk for hit in semantic + keyword}
    if fusion == "rrf":
        fused = rrf([semantic, keyword], weights=[alpha, 1 - alpha])
    else:
        sem, kw = min_max(semantic), min_max(keyword)
        fused = {i: alpha * sem.get(i, 0.0) + (1 - alpha) * kw.get(i, 0.0) for i in by_id}
    ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [Hit(by_id[i], score, "hybrid") for i, score in ranked]


def min_max(hits: list[Hit]) -> dict[int, float]:
    if not hits:
        return {}
    scores = [hit.score for hit in hits]
    low, high = min(scores), max(scores)
    span = high - low
    return {hit.chunk.chunk_id: (hit.score - low) / span if span else 1.0 for hit in hits}


def rrf(rankings: list[list[Hit]], weights: list[float], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking):
            fused[hit.chunk.chunk_id] = fused.get(hit.chunk.chunk_id, 0.0) + weight / (k + rank + 1)
    return fused
