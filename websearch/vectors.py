"""Chunk vectors in Qdrant: a server when ``qdrant_url`` is set, embedded (``path=``) otherwise.

Point ids are the chunk ids from PostgreSQL; the payload carries url, title, chunk_index, page_id.
What qdrant-client raises is translated here, once, into ``VectorStoreUnavailable`` (503).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.errors import NotReady


class VectorStoreUnavailable(NotReady):
    pass


class IndexMismatch(NotReady):
    """The collection holds vectors of another embedding model or dimension (503 until re-indexed)."""


class VectorStore:
    def __init__(self, *, url: str | None, path: str, collection: str, api_key: str | None = None) -> None:
        from qdrant_client import AsyncQdrantClient

        self.collection = collection
        self.where = url or f"embedded Qdrant at {path}"
        if url:
            self.client = AsyncQdrantClient(url=url, api_key=api_key, timeout=10, check_compatibility=False)
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            self.client = AsyncQdrantClient(path=path)
        self.dimension: int | None = None
        self.model: str | None = None  # the embedding model new collections are tagged with (set by check)
        self.checked: tuple[str, int] | None = None

    async def close(self) -> None:
        await self.client.close()

    @contextmanager
    def _unavailable_on_failure(self) -> Iterator[None]:
        """qdrant-client's failures as ``VectorStoreUnavailable``; a programming error (TypeError, ...) stays one.

        A server answers with ``ApiException`` (``UnexpectedResponse`` for an error status,
        ``ResponseHandlingException`` around the transport's error) or ``QdrantException`` (429); the
        embedded mode raises RuntimeError (closed, folder locked by another process), ValueError (no such
        collection, wrong dimension) and its storage's OSError or sqlite3.Error.
        """
        from qdrant_client.common.client_exceptions import QdrantException
        from qdrant_client.http.exceptions import ApiException

        try:
            yield
        except (ApiException, QdrantException, RuntimeError, ValueError, OSError, sqlite3.Error) as exc:
            raise VectorStoreUnavailable(f"Qdrant ({self.where}) is unavailable: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        with self._unavailable_on_failure():
            await self.client.get_collections()

    async def ensure_collection(self, dimension: int) -> None:
        from qdrant_client import models

        if self.dimension == dimension:
            return
        with self._unavailable_on_failure():
            if await self.client.collection_exists(self.collection):
                info = await self.client.get_collection(self.collection)
                self._refuse_mismatch(info, self.model, dimension)
            else:
                await self.client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                    metadata={"embedding_model": self.model} if self.model else None,
                )
        self.dimension = dimension

    async def check(self, model: str, dimension: int) -> None:
        """Raise ``IndexMismatch`` when the collection was built with another model or dimension than
        ``model`` gives; new collections are tagged with ``model``."""
        self.model = model
        if self.checked == (model, dimension):
            return
        with self._unavailable_on_failure():
            if not await self.client.collection_exists(self.collection):
                return
            info = await self.client.get_collection(self.collection)
        self._refuse_mismatch(info, model, dimension)
        self.checked = (model, dimension)

    def _refuse_mismatch(self, info: Any, model: str | None, dimension: int) -> None:
        size = info.config.params.vectors.size
        built_with = (info.config.metadata or {}).get("embedding_model")  # None: built before models were recorded
        if size == dimension and (built_with is None or model is None or built_with == model):
            return
        raise IndexMismatch(
            f"the Qdrant collection {self.collection!r} was built with {built_with or 'another model'} "
            f"({size} dimensions) but the embedding service serves {model or 'a model'} ({dimension} dimensions): "
            "its vectors cannot be compared. Re-index: delete the collection (or set WEBSEARCH_COLLECTION to a "
            "new name), restart websearch and ingest the pages again (POST /bulk_ingest)"
        )

    async def upsert(
        self, ids: Sequence[int], vectors: Sequence[Sequence[float]], payloads: Sequence[dict[str, Any]]
    ) -> None:
        from qdrant_client import models

        if not ids:
            return
        await self.ensure_collection(len(vectors[0]))
        points = [
            models.PointStruct(id=i, vector=list(v), payload=p) for i, v, p in zip(ids, vectors, payloads, strict=True)
        ]
        with self._unavailable_on_failure():
            await self.client.upsert(self.collection, points=points, wait=True)

    async def delete(self, ids: Sequence[int]) -> None:
        from qdrant_client import models

        if not ids:
            return
        with self._unavailable_on_failure():
            if await self.client.collection_exists(self.collection):
                await self.client.delete(
                    self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
                )

    async def search(self, vector: Sequence[float], limit: int) -> list[tuple[int, float]]:
        with self._unavailable_on_failure():
            if not await self.client.collection_exists(self.collection):
                return []
            result = await self.client.query_points(self.collection, query=list(vector), limit=limit)
        return [(int(point.id), float(point.score)) for point in result.points]

    async def search_among(self, vector: Sequence[float], ids: Sequence[int]) -> list[tuple[int, float]]:
        """Cosine similarity of ``vector`` to each of the points ``ids`` (those that exist), best first."""
        from qdrant_client import models

        if not ids:
            return []
        only = models.Filter(must=[models.HasIdCondition(has_id=list(ids))])
        with self._unavailable_on_failure():
            if not await self.client.collection_exists(self.collection):
                return []
            result = await self.client.query_points(
                self.collection, query=list(vector), query_filter=only, limit=len(ids)
            )
        return [(int(point.id), float(point.score)) for point in result.points]

    async def ids(self) -> set[int]:
        """Every point id (tests and maintenance)."""
        with self._unavailable_on_failure():
            if not await self.client.collection_exists(self.collection):
                return set()
            found: set[int] = set()
            offset = None
            while True:
                points, offset = await self.client.scroll(
                    self.collection, limit=1000, offset=offset, with_payload=False
                )
                found.update(int(p.id) for p in points)
                if offset is None:
                    return found
