"""embedding: the embedding service (engine, reranker), served by the routes of ``embedding.routes``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from embedding.config import Settings
from embedding.routes import router
from embedding.service import EmbeddingService
from services.app import create_app as create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = EmbeddingService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service.lifecycle.running():
            yield
        await service.fetcher.aclose()

    app = create_service_app(settings, name="embedding", health=service.health, lifespan=lifespan)
    app.state.service = service
    app.include_router(router)
    return app
