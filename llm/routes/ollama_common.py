"""What Ollama's routes share: parsing a body, timestamps, and Ollama's error shape under ``/ollama``.

Ollama answers every error as ``{"error": "<message>"}`` (a string, which Ollama clients read) and a
bad body as 400. Its OpenAI-compatible routes under ``/ollama/v1`` answer in OpenAI's shape, as the
llm's ``/v1`` does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm.config import Engine
from llm.models import ModelRegistry, ModelRoute
from llm.siblings import Siblings
from services.errors import BadRequest, LingxiError

PREFIX = "/ollama"
TOOL_ENGINES = frozenset({Engine.llamacpp, Engine.openai, Engine.ollama})  # the local (transformers) engine has none
Body = TypeVar("Body", bound=BaseModel)
Handler = Callable[[Request, Exception], Awaitable[Response]]
KernelHandler = Callable[[Request, Any], Any]  # the kernel's own handlers are coroutines answering a JSONResponse


async def parse(request: Request, model: type[Body]) -> Body:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise BadRequest("request body is not valid JSON") from None
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise BadRequest(f"{where}: {message}") from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def capabilities(route: ModelRoute) -> list[str]:
    """What Ollama's ``show`` says a chat model can do."""
    return ["completion", "tools"] if route.engine in TOOL_ENGINES else ["completion"]


async def embedding_models(models: ModelRegistry, hub: Siblings) -> list[str]:
    """The embedding service's models (a chat model of the same name wins), or none when it is down."""
    return [row["id"] for row in await hub.models(hub.embedding) if row["id"] not in models.routes]


def speaks_ollama(path: str) -> bool:
    """Ollama's own API, as opposed to its OpenAI-compatible ``/ollama/v1``."""
    inside = path == PREFIX or path.startswith(f"{PREFIX}/")
    return inside and not (path == f"{PREFIX}/v1" or path.startswith(f"{PREFIX}/v1/"))


def install_ollama_errors(app: FastAPI) -> None:
    """Reshape the kernel's error answers under ``/ollama`` into Ollama's: ``{"error": "<message>"}``.

    The kernel's handlers still decide status and message (one place for that); 422 becomes Ollama's 400.
    """
    for kind in (LingxiError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, ollama_shaped(app.exception_handlers[kind]))


def ollama_shaped(kernel: KernelHandler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response: Response = await kernel(request, exc)
        if not speaks_ollama(request.url.path):
            return response
        error = json.loads(bytes(response.body))["error"]
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        status = 400 if response.status_code == 422 else response.status_code
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    return handle
