"""OpenAI's API: ``POST /v1/chat/completions`` (SSE with ``data: [DONE]`` when streaming), ``GET /v1/models``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import Response

from llm.engines.base import Chunk
from llm.routes.common import ModelsDep, chat_request, complete, json_response, open_stream
from llm.schemas import OpenAIChatRequest
from services.errors import NotFound
from services.streaming import sse_response

router = APIRouter()
CREATED = 1_700_000_000


@router.post("/v1/chat/completions")
async def chat_completions(body: OpenAIChatRequest, models: ModelsDep) -> Response:
    def build(route):
        return chat_request(route, body.messages, body.params())

    if not body.stream:
        _, completion = await complete(models, body.model, build)
        return json_response(completion)
    route, chunks = await open_stream(models, body.model, build)
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
async def list_models(models: ModelsDep) -> Response:
    return json_response({"object": "list", "data": [model_card(name) for name in models.routes]})


@router.get("/v1/models/{model:path}")
async def get_model(model: str, models: ModelsDep) -> Response:
    if model not in models.routes:
        raise NotFound(f"model {model!r} not found; available: {', '.join(models.routes)}")
    return json_response(model_card(model))
