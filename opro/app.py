"""opro routes: the seed's API in the ``{code, msg, data}`` envelope, and the web pages."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import UploadFile

from opro import pages
from opro.backends.base import ChatBackend
from opro.backends.embeddings import FallbackEmbedder, LingxiEmbedder
from opro.backends.ollama import OllamaChat, OllamaEmbedder
from opro.candidates import CandidateGenerator
from opro.config import LLMBackend, Settings
from opro.envelope import ok, render_error
from opro.feedback import FeedbackLog
from opro.jobs import JobRunner
from opro.optimizer import Optimizer
from opro.schemas import MessageBody, QueryBody, RejectBody, SelectBody, SessionBody, SetModelBody
from opro.store import SessionStore
from opro.tasks import TaskSpec, parse_examples_file, task_from
from services.app import create_app as create_service_app
from services.clients import LLMClient
from services.errors import BadRequest, LingxiError, UnsupportedMediaType
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

    app = create_service_app(settings, name="opro", health=health, lifespan=lifespan, render_error=render_error)
    app.state.optimizer = optimizer
    app.state.jobs = jobs
    # The seed wraps /health in the envelope too: replace the kernel's plain /health route.
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) != "/health"]

    @app.get("/health")
    async def health_route() -> JSONResponse:
        report = await health()
        if not report.ready:
            return JSONResponse(render_error(503, report.detail or report.status.value), status_code=503)
        return ok({"status": "ok"})

    @app.get("/models")
    async def models() -> JSONResponse:
        return ok({"models": await optimizer.models(fresh=True)})

    @app.post("/set_model")
    async def set_model(body: SetModelBody) -> JSONResponse:
        return ok(await optimizer.set_model(body.session_id, body.model_name))

    @app.post("/query")
    async def query(body: QueryBody) -> JSONResponse:
        return ok(await optimizer.query(body.query))

    @app.post("/query_from_message")
    async def query_from_message(body: SessionBody) -> JSONResponse:
        return ok(await optimizer.query_from_message(body.session_id))

    @app.post("/select")
    async def select(body: SelectBody) -> JSONResponse:
        return ok(await optimizer.select(body.session_id, body.choice))

    @app.post("/reject")
    async def reject(body: RejectBody) -> JSONResponse:
        return ok(await optimizer.reject(body.session_id, body.candidate, body.reason))

    @app.post("/answer")
    async def answer(body: QueryBody) -> JSONResponse:
        return ok(await optimizer.answer(body.query))

    @app.post("/next")
    async def next_round(body: SessionBody) -> JSONResponse:
        return ok(await optimizer.next(body.session_id))

    @app.post("/message")
    async def message(body: MessageBody) -> JSONResponse:
        return ok(await optimizer.message(body.session_id, body.message))

    @app.get("/sessions")
    async def sessions() -> JSONResponse:
        return ok(await optimizer.sessions())

    @app.get("/session/{sid}")
    async def session(sid: str) -> JSONResponse:
        if not sid.strip():
            raise BadRequest("session id must not be empty")
        return ok(await optimizer.session(sid))

    @app.post("/optimize", status_code=202)
    async def optimize(request: Request) -> JSONResponse:
        """Start an OPRO job: a JSON task, or form fields with the examples as an uploaded ``file``."""
        job = await jobs.submit(await read_task(request))
        return ok(job, status_code=202)

    @app.get("/optimize")
    async def optimize_jobs() -> JSONResponse:
        return ok({"jobs": await jobs.summaries()})

    @app.get("/optimize/{job_id}")
    async def optimize_job(job_id: str) -> JSONResponse:
        return ok((await jobs.get(job_id)).detail())

    @app.post("/optimize/{job_id}/resume", status_code=202)
    async def resume_optimize_job(job_id: str) -> JSONResponse:
        return ok(await jobs.restart(job_id), status_code=202)

    @app.delete("/optimize/{job_id}")
    async def cancel_optimize_job(job_id: str) -> JSONResponse:
        return ok(await jobs.cancel(job_id))

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    pages.mount(app)
    return app


async def read_task(request: Request) -> TaskSpec:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        fields: dict[str, Any] = {key: value for key, value in form.items() if key != "file"}
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            fields["examples"] = parse_examples_file(upload.filename or "", await upload.read())
        elif isinstance(fields.get("examples"), str):  # examples pasted as JSON text in a form field
            fields["examples"] = parse_examples_file("examples.json", str(fields["examples"]).encode())
        return task_from(fields)
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaType("send the task as application/json, or as multipart/form-data with a file")
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the task must be a JSON object with examples")
    return task_from(body)
