"""What the three APIs share: picking the model, calling its engine, answering JSON fast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi.responses import Response

from llm import structured, tools
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.models import ModelRegistry, ModelRoute
from llm.schemas import Message
from llm.siblings import Siblings
from services import fastjson
from services.app import app_state

ModelsDep = Annotated[ModelRegistry, app_state("models")]
SiblingsDep = Annotated[Siblings, app_state("siblings")]


def chat_request(route: ModelRoute, messages: list[Message] | list[dict[str, Any]], params: dict[str, Any]):
    dumped = [m.model_dump(exclude_none=True) if isinstance(m, Message) else m for m in messages]
    return ChatRequest(model=route.engine_model, messages=dumped, params=params)


def checked(chat: ChatRequest) -> ChatRequest:
    """A malformed response_format or tools is a 400 on every engine, before anything is sent or generated."""
    structured.json_answer(chat.params)
    tools.tool_use(chat.params)
    return chat


async def complete(models: ModelRegistry, model: str | None, chat: Any) -> tuple[ModelRoute, Completion]:
    route, engine = models.ready(model)
    completion = await engine.complete(checked(chat(route)))
    completion["model"] = route.name
    return route, completion


async def open_stream(models: ModelRegistry, model: str | None, chat: Any) -> tuple[ModelRoute, AsyncIterator[Chunk]]:
    route, engine = models.ready(model)
    chunks = await engine.open_stream(checked(chat(route)))
    return route, chunks


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(fastjson.dumps(body), status_code=status_code, media_type="application/json")


__all__ = ["ChatRequest", "ModelsDep", "SiblingsDep", "chat_request", "complete", "json_response", "open_stream"]
