"""vlm: the vision engine and its image sources, served by the routes of ``vlm.routes``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.app import create_app as create_service_app
from vlm.config import Settings
from vlm.routes import VlmService, router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = VlmService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service.lifecycle.running():  # /health says "loading" until the engine has started
            yield
        await service.fetcher.aclose()

    app = create_service_app(settings, name="vlm", health=service.health, lifespan=lifespan)
    app.state.vlm = service
    app.include_router(router)
    return app
