"""llm wiring: the seed API, OpenAI's and Ollama's over the engines of the served models, and the
sibling services' OpenAI routes forwarded, so one base URL reaches the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm import pages
from llm.config import Settings
from llm.models import ModelRegistry
from llm.pulled import PulledIndex
from llm.routes import forward, ollama_api, ollama_models, ollama_pull, openai_api, realtime, seed
from llm.routes.ollama_common import PREFIX, install_ollama_errors
from llm.siblings import Siblings
from services.app import create_app as create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    models = ModelRegistry(settings)
    pulled = PulledIndex(settings.pulled_models_dir)
    for name, entry in pulled.load().items():  # GGUF models pulled before: served again
        if name not in models.routes:
            models.add(pulled.route(name, entry))
    siblings = Siblings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with models.running():  # the local model loads in the background; /health says "loading"
            yield
        await siblings.aclose()

    app = create_service_app(settings, name="llm", health=models.health, lifespan=lifespan)
    app.state.models = models
    app.state.siblings = siblings
    app.state.pulled_index = pulled
    app.state.pull_jobs = {}
    app.state.realtime_sessions = set()  # the open /v1/realtime sessions
    app.include_router(seed.router)
    for prefix in ("", PREFIX):  # Ollama serves OpenAI's API under its own root too: /ollama/v1/...
        app.include_router(openai_api.router, prefix=prefix)
        app.include_router(forward.router, prefix=prefix)
    app.include_router(realtime.router)
    app.include_router(ollama_api.router)
    app.include_router(ollama_models.router)
    app.include_router(ollama_pull.router)
    install_ollama_errors(app)
    pages.mount(app)
    return app
