"""Ollama's ``pull`` and ``delete`` under ``/ollama``, for GGUF models from Hugging Face or ModelScope.

``pull`` takes ``hf.co/{owner}/{repo}[:{quant}]``, ``huggingface.co/…`` or a familiar name
(``qwen2.5:0.5b``, ``qwen3:0.6b`` …), streams Ollama's status lines while the file downloads
(``pulling manifest``, ``pulling <digest>`` with ``total``/``completed``, ``verifying sha256 digest``,
``writing manifest``, ``success``; ``stream: false``: the last one only), and then serves the model with
the llamacpp engine, without a restart. ``delete`` removes a pulled model; the configured ones stay.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from llm.models import ModelRegistry
from llm.pulled import PulledIndex, PullJob
from llm.routes.common import ModelsDep, SiblingsDep, json_response
from llm.routes.ollama_common import PREFIX, parse
from llm.routes.ollama_models import refusal, required, served
from llm.schemas import OllamaModelRequest
from services.errors import BadRequest, LingxiError, NotFound, UpstreamError
from services.models.names import BadName, ollama_name
from services.models.pull import PullError
from services.streaming import ndjson_response

router = APIRouter(prefix=PREFIX)


class InsufficientStorage(LingxiError):
    status_code = 507


def http_error(error: PullError) -> LingxiError:
    kinds: dict[str, type[LingxiError]] = {"not_found": NotFound, "no_space": InsufficientStorage}
    return kinds.get(error.kind, UpstreamError)(f"pull model manifest: {error.message}")


async def lines(*events: dict[str, Any]) -> Any:
    for event in events:
        yield event


def start(app: FastAPI, job: PullJob, models: ModelRegistry) -> None:
    """Pull, record and load the model in a task of its own: a client that leaves does not stop it."""
    jobs: dict[str, PullJob] = app.state.pull_jobs
    name = job.name.name

    async def go() -> None:
        try:
            entry = await job.run()
            job.emit({"status": "writing manifest"})
            entries = job.index.load()
            entries[name] = entry
            job.index.save(entries)
            lifecycle = models.add(job.index.route(name, entry))
            await lifecycle.start()
            if not lifecycle.ready:
                await models.discard(name)
                job.index.forget(name)
                raise PullError(f"the model was pulled but does not load: {lifecycle.detail}")
            job.finish(entry, None)
        except PullError as exc:
            job.finish(None, exc)
        except Exception as exc:  # the stream ends with Ollama's error line, whatever failed
            job.finish(None, PullError(f"{type(exc).__name__}: {exc}"))
        finally:
            jobs.pop(name, None)

    jobs[name] = job
    job.task = asyncio.create_task(go(), name=f"pull {name}")


@router.post("/api/pull")
async def pull(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    body = await parse(request, OllamaModelRequest)
    name = required(body)
    if name in await served(models, hub):  # as Ollama answers for a model it has
        return ndjson_response(lines({"status": "success"})) if body.stream else json_response({"status": "success"})
    try:
        wanted = ollama_name(name)
    except BadName as exc:
        raise BadRequest(str(exc)) from None
    job = request.app.state.pull_jobs.get(name)
    if job is None:
        job = PullJob(wanted, request.app.state.pulled_index)
        start(request.app, job, models)
    await job.manifest.wait()
    if job.error is not None and not any("digest" in line for line in job.lines):
        raise http_error(job.error)  # nothing was downloaded: a plain error answer
    if not body.stream:
        await job.done.wait()
        if job.error is not None:
            raise http_error(job.error)
        return json_response({"status": "success"})
    return ndjson_response(job.follow())


@router.delete("/api/delete")
async def delete(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    name = required(await parse(request, OllamaModelRequest))
    index: PulledIndex = request.app.state.pulled_index
    if name in index.load() and name in models.routes:
        await models.discard(name)
        await asyncio.to_thread(index.forget, name)
        return Response(status_code=200)
    raise await refusal(models, hub, name, "deletes")
