"""vlm: the vision engine and its image sources, served by the routes of ``vlm.routes``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.app import create_app as create_service_app
from vlm.config import Settings
from vlm.engines import build_engine
from vlm.routes import VlmService, router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = VlmService(settings, build_engine(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(service.engine.start())  # /health says "loading" until it is done
        try:
            yield
        finally:
            loading.cancel()
            await service.aclose()

    app = create_service_app(settings, name="vlm", health=service.engine.health, lifespan=lifespan)
    app.state.vlm = service
    app.include_router(router)
    return app
