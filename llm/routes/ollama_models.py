"""Ollama's model API under ``/ollama``: what is served (``tags``, ``show``, ``ps``, ``version``) and the
model management verbs that change nothing here.

lingxi serves the models it is configured with: the llm's chat models (``LLM_MODELS``), the GGUF models
pulled through ``pull`` (``ollama_pull``) and the embedding service's models. ``push``, ``create`` and
``copy`` are refused with a message that says how models are configured.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from llm.models import ModelRegistry
from llm.routes.common import ModelsDep, SiblingsDep, json_response
from llm.routes.ollama_common import PREFIX, capabilities, embedding_models, now, parse
from llm.schemas import OllamaCopyRequest, OllamaModelRequest
from llm.siblings import Siblings
from services.errors import BadRequest, NotFound

OLLAMA_VERSION = "0.12.0"  # the Ollama API version these routes follow
STARTED = now()
NEVER = "9999-12-31T23:59:59+00:00"  # ps's expires_at: lingxi keeps its models loaded
EMBEDDING_DETAILS = {
    "parent_model": "",
    "format": "remote",
    "family": "unknown",
    "families": ["unknown"],
    "parameter_size": "unknown",
    "quantization_level": "unknown",
}

router = APIRouter(prefix=PREFIX)


def chat_details(models: ModelRegistry, name: str) -> dict[str, Any]:
    _, engine = models.resolve(name)
    info = engine.details()
    family = info.get("family", "unknown")
    return {
        "parent_model": "",
        "format": info.get("format", "remote"),
        "family": family,
        "families": [family],
        "parameter_size": info.get("parameter_size", "unknown"),
        "quantization_level": info.get("quantization_level", "unknown"),
    }


async def served(models: ModelRegistry, hub: Siblings) -> list[str]:
    return [*models.routes, *await embedding_models(models, hub)]


async def not_found(models: ModelRegistry, hub: Siblings, name: str) -> NotFound:
    return NotFound(f"model {name!r} not found; served: {', '.join(await served(models, hub))}")


def entry(name: str, details: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {"name": name, "model": name, "size": 0, "digest": digest, "details": details}


@router.get("/api/tags")
@router.head("/api/tags", include_in_schema=False)
async def tags(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    pulled = request.app.state.pulled_index.load()
    rows = [entry(name, chat_details(models, name)) for name in models.routes]
    for row in rows:  # a pulled GGUF: its own size and sha256
        if row["name"] in pulled:
            row.update(size=pulled[row["name"]].size, digest=pulled[row["name"]].sha256)
    rows += [entry(name, EMBEDDING_DETAILS) for name in await embedding_models(models, hub)]
    return json_response({"models": [{**row, "modified_at": STARTED} for row in rows]})


@router.get("/api/ps")
async def ps(models: ModelsDep, hub: SiblingsDep) -> Response:
    """The models ready to answer now: chat models whose engine is healthy, and the embedding models."""
    engines = list(models.lifecycles)
    flags = await asyncio.gather(*(models.is_ready(engine) for engine in engines))
    ready = {id(engine) for engine, flag in zip(engines, flags, strict=True) if flag}
    rows = []
    for name in models.routes:
        engine = models.engine_of[name]
        if id(engine) in ready:
            row = {**entry(name, chat_details(models, name)), "expires_at": NEVER, "size_vram": 0}
            if engine.details().get("context_length"):
                row["context_length"] = engine.details()["context_length"]
            rows.append(row)
    for name in await embedding_models(models, hub):
        rows.append({**entry(name, EMBEDDING_DETAILS), "expires_at": NEVER, "size_vram": 0})
    return json_response({"models": rows})


@router.post("/api/show")
async def show(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    body = await parse(request, OllamaModelRequest)
    name = required(body)
    if name in models.routes:
        route, engine = models.resolve(name)
        info = engine.details()
        details = chat_details(models, name)
        model_info: dict[str, Any] = {"general.architecture": details["family"]}
        if info.get("context_length"):
            model_info[f"{details['family']}.context_length"] = info["context_length"]
        return json_response(
            {
                "modelfile": f"FROM {route.engine_model}\n",
                "parameters": "",
                "template": info.get("template", ""),
                "details": details,
                "model_info": model_info,
                "capabilities": capabilities(route),
                "modified_at": STARTED,
            }
        )
    if name in await embedding_models(models, hub):
        return json_response(
            {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": EMBEDDING_DETAILS,
                "model_info": {"general.architecture": "unknown"},
                "capabilities": ["embedding"],
                "modified_at": STARTED,
            }
        )
    raise await not_found(models, hub, name)


def required(body: OllamaModelRequest) -> str:
    if not body.named:
        raise BadRequest("model is required")
    return body.named


async def refused(models: ModelRegistry, hub: Siblings, verb: str) -> BadRequest:
    return BadRequest(
        f"lingxi {verb} no models: it serves the models it is configured with, chat models from LLM_MODELS "
        f"(docs/llm.md) and the embedding service's from its EMBEDDING_ settings; served: "
        f"{', '.join(await served(models, hub))}"
    )


async def refusal(models: ModelRegistry, hub: Siblings, name: str, verb: str) -> NotFound | BadRequest:
    """What Ollama's push, delete and copy of ``name`` get: 404 for a model not served, else the refusal."""
    if name not in await served(models, hub):
        return await not_found(models, hub, name)
    return await refused(models, hub, verb)


@router.post("/api/push")
async def push(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    raise await refusal(models, hub, required(await parse(request, OllamaModelRequest)), "pushes")


@router.post("/api/copy")
async def copy(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    raise await refusal(models, hub, (await parse(request, OllamaCopyRequest)).source, "copies")


@router.post("/api/create")
async def create(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    required(await parse(request, OllamaModelRequest))
    raise await refused(models, hub, "creates")


@router.get("/api/version")
@router.head("/api/version", include_in_schema=False)
async def version() -> Response:
    return json_response({"version": OLLAMA_VERSION})


@router.get("")
@router.head("", include_in_schema=False)
@router.get("/")
@router.head("/", include_in_schema=False)
async def root() -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")
