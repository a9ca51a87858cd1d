"""The seed API: ``POST /api/chat`` → ``{content, model, raw}`` and ``/api/chat/stream`` (NDJSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from llm import openai_format
from llm.engines.base import Chunk
from llm.routes.common import ModelsDep, chat_request, complete, json_response, open_stream
from llm.schemas import SeedChatRequest
from services.streaming import ndjson_response

router = APIRouter()


@router.post("/api/chat")
async def chat(body: SeedChatRequest, models: ModelsDep) -> Response:
    route, completion = await complete(
        models, body.model, lambda route: chat_request(route, body.messages, body.params())
    )
    return json_response({"content": openai_format.message_text(completion), "model": route.name, "raw": completion})


@router.post("/api/chat/stream")
async def chat_stream(body: SeedChatRequest, models: ModelsDep) -> StreamingResponse:
    _, chunks = await open_stream(models, body.model, lambda route: chat_request(route, body.messages, body.params()))
    return ndjson_response(deltas(chunks))


async def deltas(chunks: AsyncIterator[Chunk]) -> AsyncIterator[dict[str, Any]]:
    think = openai_format.ThinkFilter()
    try:
        async for chunk in chunks:
            text = think.feed(openai_format.delta_text(chunk))
            if text:
                yield {"delta": text}
        yield {"event": "done"}
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
