"""llm routes: the seed API, OpenAI's and Ollama's, over the engines of the served models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm.config import Settings
from llm.models import ModelRegistry
from llm.routes import ollama_api, openai_api, seed
from services.app import create_app as create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    models = ModelRegistry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with models.running():  # the local model loads in the background; /health says "loading"
            yield

    app = create_service_app(settings, name="llm", health=models.health, lifespan=lifespan)
    app.state.models = models
    app.include_router(seed.router)
    app.include_router(openai_api.router)
    app.include_router(ollama_api.router)
    return app
