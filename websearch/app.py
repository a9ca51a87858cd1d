"""websearch routes: ingest pages and search them by keyword, meaning, or both (the seed's shapes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timezone
from email.utils import format_datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from services.app import create_app as create_service_app
from services.clients import EmbeddingClient
from services.errors import BadRequest, NotFound
from services.health import Health, Status
from websearch import tokens
from websearch.config import Settings
from websearch.index import WebIndex
from websearch.store import Store, isoformat
from websearch.vectors import VectorStore

SERVICE = {"service": "websearch-api"}


class IngestRequest(BaseModel):
    url: str


class BulkIngestRequest(BaseModel):
    urls: list[str]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        vectors = VectorStore(
            url=settings.qdrant_url,
            path=settings.qdrant_path,
            collection=settings.collection,
            api_key=settings.qdrant_api_key,
        )
        embedder = EmbeddingClient(settings.embedding_url, api_key=settings.embedding_api_key, timeout_s=120)
        index = WebIndex(settings, store, vectors, embedder)
        await store.open()
        opened = asyncio.create_task(prepare_when_reachable(index, state))
        await asyncio.to_thread(tokens.load_segmenter)
        state["index"] = app.state.index = index
        try:
            yield
        finally:
            opened.cancel()
            await index.close()
            await embedder.aclose()
            await vectors.close()
            await store.close()

    async def health() -> Health:
        index: WebIndex | None = state.get("index")
        if index is None:
            return Health(Status.loading, "starting", SERVICE)
        if "store_error" in state:
            return Health(Status.error, state["store_error"], SERVICE)
        dependencies = await index.health()
        down = {name: problem for name, problem in dependencies.items() if problem != "ok"}
        extra = {**SERVICE, "dependencies": dependencies}
        if down:
            return Health(Status.error, "; ".join(f"{name} is down: {why}" for name, why in down.items()), extra)
        if not state.get("reconciled"):
            return Health(Status.loading, "checking that PostgreSQL and Qdrant agree", extra)
        return Health(Status.ok, None, extra)

    app = create_service_app(settings, name="websearch", health=health, lifespan=lifespan)

    def index() -> WebIndex:
        return state["index"]

    @app.post("/ingest")
    async def ingest(body: IngestRequest) -> dict[str, Any]:
        return await index().ingest(body.url)

    @app.post("/bulk_ingest")
    async def bulk_ingest(body: BulkIngestRequest) -> list[dict[str, Any]]:
        if not body.urls:
            raise BadRequest("urls must name at least one URL")
        if len(body.urls) > settings.bulk_max_urls:
            raise BadRequest(f"at most {settings.bulk_max_urls} URLs per call (got {len(body.urls)})")
        return await index().bulk_ingest(body.urls)

    def checked(q: str, limit: int) -> str:
        if not q or not q.strip():
            raise BadRequest("q must not be empty")
        if len(q) > 1000:
            raise BadRequest("q is longer than 1000 characters")
        if not 1 <= limit <= settings.max_limit:
            raise BadRequest(f"limit must be between 1 and {settings.max_limit}")
        return q

    @app.get("/search/keyword")
    async def search_keyword(q: str = "", limit: int = 10) -> list[dict[str, Any]]:
        checked(q, limit)
        return index().shape(await index().keyword(q, limit), q)

    @app.get("/search/semantic")
    async def search_semantic(q: str = "", limit: int = 10) -> list[dict[str, Any]]:
        checked(q, limit)
        return index().shape(await index().semantic(q, limit), q)

    @app.get("/search/hybrid")
    async def search_hybrid(
        q: str = "", limit: int = 10, alpha: float = 0.7, fusion: str = "minmax"
    ) -> list[dict[str, Any]]:
        checked(q, limit)
        if not 0.0 <= alpha <= 1.0:
            raise BadRequest("alpha must be between 0 and 1")
        if fusion not in ("minmax", "rrf"):
            raise BadRequest("fusion must be 'minmax' or 'rrf'")
        return index().shape(await index().hybrid(q, limit, alpha, fusion), q)

    @app.get("/page")
    async def page(url: str | None = None, id: int | None = None) -> dict[str, Any]:  # noqa: A002 (seed's name)
        if url is None and id is None:
            raise BadRequest("give ?url= or ?id=")
        row = await index().store.page(url=url, page_id=id)
        if row is None:
            raise NotFound(f"no page with {'url ' + url if url is not None else f'id {id}'}")
        return {
            "content": row["content"],
            "fetched_at": format_datetime(row["fetched_at"].astimezone(timezone.utc), usegmt=True),
            "html": row["html"],
            "id": row["id"],
            "lang": row["lang"],
            "published_at": isoformat(row["published_at"]),
            "site": row["site"],
            "title": row["title"],
            "url": row["url"],
        }

    return app


async def prepare_when_reachable(index: WebIndex, state: dict[str, Any]) -> None:
    """In the background, retrying, so the service can start before its dependencies: apply the schema,
    then repair what a crash may have left in PostgreSQL and Qdrant (``state["reconciled"]`` once done)."""
    state["store_error"] = "PostgreSQL: connecting"
    delay = 0.5
    while True:
        try:
            await index.store.migrate()
            state.pop("store_error", None)
            break
        except Exception as exc:  # any failure to reach or migrate the database: report it in /health, retry
            state["store_error"] = f"PostgreSQL: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
    await index.reconcile_when_reachable()
    state["reconciled"] = True
