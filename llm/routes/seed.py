"""The seed API: ``POST /api/chat`` → ``{content, model, raw}`` and ``/api/chat/stream`` (NDJSON).

With ``web_search: true`` the answer comes from a web search: its results are numbered sources the
answer cites as ``[n]``, listed in ``sources`` (the first line of a stream), and ``raw`` carries OpenAI's
``url_citation`` annotations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from llm import citations, openai_format, web_answer
from llm.engines.base import Chunk
from llm.routes.common import ModelsDep, SiblingsDep, chat_request, complete, json_response, open_stream
from llm.schemas import SeedChatRequest
from llm.siblings import Siblings
from services.streaming import ndjson_response

router = APIRouter()
SOURCES = web_answer.SOURCES_BY_CONTEXT_SIZE["medium"]


async def conversation(body: SeedChatRequest, hub: Siblings) -> tuple[list[dict[str, Any]], web_answer.Found]:
    dumped = [message.model_dump(exclude_none=True) for message in body.messages]
    if not body.web_search:
        return dumped, web_answer.Found("", [])
    return await web_answer.prepare(hub, dumped, SOURCES)


@router.post("/api/chat")
async def chat(body: SeedChatRequest, models: ModelsDep, hub: SiblingsDep) -> Response:
    models.ready(body.model)  # an unknown model fails before the web is searched
    messages, found = await conversation(body, hub)
    route, completion = await complete(models, body.model, lambda route: chat_request(route, messages, body.params()))
    if body.web_search:
        await citations.annotate(completion, found, hub)
    answer: dict[str, Any] = {"content": openai_format.message_text(completion), "model": route.name, "raw": completion}
    if body.web_search:
        answer["sources"] = [source.row() for source in found.sources]
    return json_response(answer)


@router.post("/api/chat/stream")
async def chat_stream(body: SeedChatRequest, models: ModelsDep, hub: SiblingsDep) -> StreamingResponse:
    models.ready(body.model)
    messages, found = await conversation(body, hub)
    _, chunks = await open_stream(models, body.model, lambda route: chat_request(route, messages, body.params()))
    if not body.web_search:
        return ndjson_response(deltas(chunks))
    first: list[dict[str, Any]] = [{"sources": [source.row() for source in found.sources]}]
    return ndjson_response(deltas(citations.annotated_stream(chunks, found, hub), first))


async def deltas(
    chunks: AsyncIterator[Chunk], first: list[dict[str, Any]] | None = None
) -> AsyncIterator[dict[str, Any]]:
    think = openai_format.ThinkFilter()
    try:
        for line in first or []:
            yield line
        async for chunk in chunks:
            text = think.feed(openai_format.delta_text(chunk))
            if text:
                yield {"delta": text}
        yield {"event": "done"}
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
