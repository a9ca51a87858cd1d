"""websearch: the web index over PostgreSQL, Qdrant and the embedding service; routes in ``websearch.routes``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.app import create_app as create_service_app
from services.clients import EmbeddingClient
from services.health import Health, Status
from websearch import extract, tokens
from websearch.backends import backend_from
from websearch.config import Settings
from websearch.index import WebIndex
from websearch.routes import router
from websearch.store import Store
from websearch.vectors import VectorStore
from websearch.web import WebSearch
from websearch.web_routes import router as web_router

SERVICE = {"service": "websearch-api"}


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
        backend = backend_from(settings)
        await store.open()
        opened = asyncio.create_task(prepare_when_reachable(index, state))
        await asyncio.gather(asyncio.to_thread(tokens.load_segmenter), asyncio.to_thread(extract.warm_up))
        state["index"] = app.state.index = index
        app.state.web = WebSearch(settings, index, backend)
        try:
            yield
        finally:
            opened.cancel()
            await index.close()
            await backend.aclose()
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
    app.include_router(router)
    app.include_router(web_router)
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
