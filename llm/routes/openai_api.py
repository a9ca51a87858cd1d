"""OpenAI's API: ``POST /v1/chat/completions`` (SSE with ``data: [DONE]`` when streaming), ``GET /v1/models``.

``/v1/models`` lists the llm's own models and those of every sibling that answers (embedding, asr,
tts), so a client given this one base URL sees everything it can call through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from llm import citations, web_answer
from llm.engines.base import Chunk
from llm.engines.openai import OpenAIEngine
from llm.models import ModelRegistry
from llm.routes.common import ModelsDep, SiblingsDep, chat_request, checked, complete, json_response
from llm.schemas import OpenAIChatRequest
from llm.siblings import Siblings
from services.errors import NotFound
from services.openai_models import model_card
from services.streaming import sse_response

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(body: OpenAIChatRequest, models: ModelsDep, hub: SiblingsDep) -> Response:
    params = body.params()
    if params.get("web_search_options") is not None:
        return await answer_with_sources(body, params, models, hub)
    params.pop("web_search_options", None)  # null: no search, as OpenAI reads it

    def build(route):
        return chat_request(route, body.messages, params)

    if not body.stream:
        _, completion = await complete(models, body.model, build)
        return json_response(completion)
    route, engine = models.ready(body.model)
    chat = checked(build(route))
    if isinstance(engine, OpenAIEngine):  # an OpenAI upstream's events go on as they came
        return sse_response(await engine.open_relay(chat, route.name))
    return sse_response(renamed(await engine.open_stream(chat), route.name))


async def answer_with_sources(
    body: OpenAIChatRequest, params: dict[str, Any], models: ModelRegistry, hub: Siblings
) -> Response:
    """OpenAI's web search: the answer cites numbered search results, each ``[n]`` a ``url_citation``."""
    count = web_answer.source_count(params.pop("web_search_options"))
    route, engine = models.ready(body.model)
    conversation, found = await web_answer.prepare(hub, chat_request(route, body.messages, params).messages, count)
    chat = checked(chat_request(route, conversation, params))
    if not body.stream:
        completion = await engine.complete(chat)
        completion["model"] = route.name
        return json_response(await citations.annotate(completion, found, hub))
    return sse_response(citations.annotated_stream(renamed(await engine.open_stream(chat), route.name), found, hub))


async def renamed(chunks: AsyncIterator[Chunk], name: str) -> AsyncIterator[Chunk]:
    try:
        async for chunk in chunks:
            chunk["model"] = name
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def every_model(models: ModelRegistry, hub: Siblings) -> list[dict[str, Any]]:
    """The llm's models, then each reachable sibling's; a name already listed is not listed twice."""
    cards: dict[str, dict[str, Any]] = {name: model_card(name) for name in models.routes}
    for rows in (await hub.every_model()).values():
        for row in rows:
            cards.setdefault(row["id"], row)
    return list(cards.values())


@router.get("/v1/models")
async def list_models(models: ModelsDep, hub: SiblingsDep) -> Response:
    return json_response({"object": "list", "data": await every_model(models, hub)})


@router.get("/v1/models/{model:path}")
async def get_model(model: str, models: ModelsDep, hub: SiblingsDep) -> Response:
    cards = {card["id"]: card for card in await every_model(models, hub)}
    if model not in cards:
        raise NotFound(f"model {model!r} not found; available: {', '.join(cards)}")
    return json_response(cards[model])
