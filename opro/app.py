"""opro: the optimizer and its job runner over the chat and embedding backends; routes in ``opro.routes``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from opro import pages
from opro.backends.base import ChatBackend
from opro.backends.embeddings import FallbackEmbedder, LingxiEmbedder
from opro.backends.ollama import OllamaChat, OllamaEmbedder
from opro.candidates import CandidateGenerator
from opro.config import LLMBackend, Settings
from opro.envelope import render_error, render_health
from opro.feedback import FeedbackLog
from opro.jobs import JobRunner
from opro.optimizer import Optimizer
from opro.routes import router
from opro.store import SessionStore
from services.app import create_app as create_service_app
from services.clients import LLMClient
from services.errors import LingxiError
from services.health import Health, Status

log = logging.getLogger("opro")


def build_chat(settings: Settings) -> ChatBackend:
    if settings.llm_backend is LLMBackend.ollama:
        if not settings.ollama_url:
            raise ValueError("OPRO_LLM_BACKEND=ollama needs OPRO_OLLAMA_URL")
        return OllamaChat(settings.ollama_url, timeout_s=settings.llm_timeout_s)
    return LLMClient(settings.llm_url, api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s)


def build_optimizer(settings: Settings) -> Optimizer:
    chat = build_chat(settings)
    primary = LingxiEmbedder(
        settings.embedding_url,
        model=settings.embedding_model,
        api_key=settings.embedding_api_key,
        timeout_s=settings.embedding_timeout_s,
    )
    fallback = None
    if settings.ollama_url:
        fallback = OllamaEmbedder(
            settings.ollama_url, model=settings.ollama_embedding_model, timeout_s=settings.embedding_timeout_s
        )
    generator = CandidateGenerator(
        chat,
        FallbackEmbedder(primary, fallback),
        top_k=settings.top_k,
        threshold=settings.cluster_threshold,
        raw_count=settings.raw_candidates,
        max_tokens=settings.candidate_max_tokens,
        temperature=settings.temperature,
    )
    store = SessionStore.open(settings.database_url, settings.data_dir)
    return Optimizer(settings, chat, generator, store, FeedbackLog(settings.feedback_path))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    optimizer = build_optimizer(settings)
    jobs = JobRunner(settings, optimizer.chat, optimizer.store, lambda: optimizer.model_for(None), optimizer.models)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            resumed = await jobs.begin()
            if resumed:
                log.info("resumed %d unfinished optimisation job(s)", resumed)
        except LingxiError as exc:  # the database is down: serve anyway, /health says why
            log.warning("could not resume optimisation jobs: %s", exc.message)
        try:
            yield
        finally:
            await jobs.shutdown()
            await optimizer.chat.aclose()
            await optimizer.generator.embedder.aclose()
            optimizer.store.close()

    async def health() -> Health:
        try:
            await optimizer.check_ready()
        except LingxiError as exc:
            return Health(Status.error, exc.message)
        return Health(Status.ok)

    app = create_service_app(
        settings, name="opro", health=health, lifespan=lifespan, render_error=render_error, render_health=render_health
    )
    app.state.optimizer = optimizer
    app.state.jobs = jobs
    app.include_router(router)
    pages.mount(app)
    return app
