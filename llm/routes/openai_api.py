"""OpenAI's API: ``POST /v1/chat/completions`` (SSE with ``data: [DONE]`` when streaming), ``GET /v1/models``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llm.engines.base import Chunk
from llm.routes.common import chat_request, complete, json_response, open_stream, registry
from llm.schemas import OpenAIChatRequest
from services.errors import NotFound
from services.streaming import sse_response

router = APIRouter()
CREATED = 1_700_000_000


@router.post("/v1/chat/completions")
async def chat_completions(body: OpenAIChatRequest, request: Request) -> Response:
    def build(route):
        return chat_request(route, body.messages, body.params())

    if not body.stream:
        _, completion = await complete(request, body.model, build)
        return json_response(completion)
    route, chunks = await open_stream(request, body.model, build)
    return sse_response(renamed(chunks, route.name))


async def renamed(chunks: AsyncIterator[Chunk], name: str) -> AsyncIterator[Chunk]:
    try:
        async for chunk in chunks:
            chunk["model"] = name
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def model_card(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "lingxi"}


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    return json_response({"object": "list", "data": [model_card(name) for name in registry(request).routes]})


@router.get("/v1/models/{model:path}")
async def get_model(model: str, request: Request) -> Response:
    models = registry(request).routes
    if model not in models:
        raise NotFound(f"model {model!r} not found; available: {', '.join(models)}")
    return json_response(model_card(model))
