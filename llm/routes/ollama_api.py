"""Ollama's API under ``/ollama``: point an Ollama client at ``http://host:7207/ollama``.

``chat`` and ``generate`` stream NDJSON by default (Ollama's ``stream`` defaults to true), errors are
Ollama's ``{"error": "..."}``, and ``tags``/``show``/``version`` describe the served models.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from llm import openai_format
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.models import ModelRoute
from llm.routes.common import complete, json_response, open_stream, registry
from llm.schemas import Message, OllamaChatRequest, OllamaGenerateRequest, OllamaShowRequest
from llm.structured import response_format_of
from services.errors import BadRequest, LingxiError, Unprocessable
from services.streaming import ndjson_response

OLLAMA_VERSION = "0.12.0"  # the Ollama API version these routes follow
STARTED = datetime.now(timezone.utc).isoformat()
Body = TypeVar("Body", bound=BaseModel)


class OllamaErrors(APIRoute):
    """Answer errors in Ollama's shape, ``{"error": "message"}``, which Ollama clients read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LingxiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=exc.headers)

        return handle


router = APIRouter(prefix="/ollama", route_class=OllamaErrors)


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
        raise Unprocessable(f"{where}: {first.get('msg', 'invalid')}") from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def no_images(messages: list[Message]) -> list[Message]:
    for message in messages:
        if (message.model_extra or {}).get("images"):
            raise BadRequest("images are not supported by the llm service; send them to lingxi's vlm service")
    return messages


def stats(completion: Completion, started: float) -> dict[str, Any]:
    choice = openai_format.first_choice(completion)
    counts = completion.get("usage") or {}
    elapsed = int((time.perf_counter() - started) * 1e9)
    return {
        "done": True,
        "done_reason": "length" if choice.get("finish_reason") == "length" else "stop",
        "total_duration": elapsed,
        "load_duration": 0,
        "prompt_eval_count": counts.get("prompt_tokens", 0),
        "prompt_eval_duration": 0,
        "eval_count": counts.get("completion_tokens", 0),
        "eval_duration": elapsed,
    }


def with_format(params: dict[str, Any], format_: Any) -> dict[str, Any]:
    response_format = response_format_of(format_)
    return {**params, "response_format": response_format} if response_format else params


def ollama_tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            pass
        calls.append({"function": {"name": function.get("name"), "arguments": arguments or {}}})
    return calls


async def answer(
    request: Request, model: str | None, build: Callable[[ModelRoute], ChatRequest], stream: bool, shape: str
) -> Response:
    """Run one request and shape it as Ollama's chat (``message``) or generate (``response``) answer."""
    started = time.perf_counter()
    if not stream:
        route, completion = await complete(request, model, build)
        message = openai_format.first_choice(completion).get("message") or {}
        body: dict[str, Any] = {"model": route.name, "created_at": now()}
        text = openai_format.message_text(completion)
        if shape == "chat":
            body["message"] = {"role": "assistant", "content": text}
            if message.get("reasoning_content"):
                body["message"]["thinking"] = message["reasoning_content"]
            if message.get("tool_calls"):
                body["message"]["tool_calls"] = ollama_tool_calls(message)
        else:
            body["response"] = text
        return json_response({**body, **stats(completion, started)})
    route, chunks = await open_stream(request, model, build)
    return ndjson_response(stream_lines(chunks, route.name, shape, started))


async def stream_lines(chunks: AsyncIterator[Chunk], name: str, shape: str, started: float) -> AsyncIterator[Any]:
    think = openai_format.ThinkFilter()
    last: Chunk = {}
    calls: dict[int, dict[str, Any]] = {}
    try:
        async for chunk in chunks:
            last = chunk
            openai_format.merge_tool_calls(calls, chunk)
            text = think.feed(openai_format.delta_text(chunk))
            if text:
                if shape == "chat":
                    yield {
                        "model": name,
                        "created_at": now(),
                        "message": {"role": "assistant", "content": text},
                        "done": False,
                    }
                else:
                    yield {"model": name, "created_at": now(), "response": text, "done": False}
        if calls and shape == "chat":
            tool_calls = ollama_tool_calls({"tool_calls": [*calls.values()]})
            message = {"role": "assistant", "content": "", "tool_calls": tool_calls}
            yield {"model": name, "created_at": now(), "message": message, "done": False}
        final: dict[str, Any] = {"model": name, "created_at": now()}
        if shape == "chat":
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        yield {**final, **stats(last, started)}
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


@router.post("/api/chat")
async def chat(request: Request) -> Response:
    body = await parse(request, OllamaChatRequest)
    if not body.messages:  # Ollama's way to load a model: answer done at once
        route, _ = registry(request).resolve(body.model)
        return json_response(
            {
                "model": route.name,
                "created_at": now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "load",
            }
        )
    messages = [m.model_dump(exclude_none=True, exclude={"images"}) for m in no_images(body.messages)]
    params = with_format(body.options.params(), body.format)
    if body.tools:
        params["tools"] = body.tools
    if (body.model_extra or {}).get("tool_choice") is not None:  # not Ollama's: lingxi takes OpenAI's values
        params["tool_choice"] = body.model_extra["tool_choice"]  # type: ignore[index]

    def build(route: ModelRoute) -> ChatRequest:
        return ChatRequest(route.engine_model, messages, params)

    return await answer(request, body.model, build, body.stream, "chat")


@router.post("/api/generate")
async def generate(request: Request) -> Response:
    body = await parse(request, OllamaGenerateRequest)
    if not body.prompt:
        route, _ = registry(request).resolve(body.model)
        return json_response(
            {"model": route.name, "created_at": now(), "response": "", "done": True, "done_reason": "load"}
        )
    messages = ([{"role": "system", "content": body.system}] if body.system else []) + [
        {"role": "user", "content": body.prompt}
    ]

    params = with_format(body.options.params(), body.format)

    def build(route: ModelRoute) -> ChatRequest:
        raw = body.prompt if body.raw else None
        return ChatRequest(route.engine_model, messages, params, raw_prompt=raw)

    return await answer(request, body.model, build, body.stream, "generate")


def model_details(request: Request, name: str) -> dict[str, Any]:
    _, engine = registry(request).resolve(name)
    info = engine.details()
    return {
        "parent_model": "",
        "format": info.get("format", "remote"),
        "family": info.get("family", "unknown"),
        "families": [info.get("family", "unknown")],
        "parameter_size": info.get("parameter_size", "unknown"),
        "quantization_level": info.get("quantization_level", "unknown"),
    }


@router.get("/api/tags")
async def tags(request: Request) -> Response:
    models = []
    for name in registry(request).routes:
        digest = hashlib.sha256(name.encode()).hexdigest()
        models.append(
            {
                "name": name,
                "model": name,
                "modified_at": STARTED,
                "size": 0,
                "digest": digest,
                "details": model_details(request, name),
            }
        )
    return json_response({"models": models})


@router.post("/api/show")
async def show(request: Request) -> Response:
    body = await parse(request, OllamaShowRequest)
    name = body.model or body.name
    if not name:
        raise BadRequest("model is required")
    route, engine = registry(request).resolve(name)
    info = engine.details()
    details = model_details(request, name)
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
            "capabilities": ["completion"],
            "modified_at": STARTED,
        }
    )


@router.get("/api/version")
async def version() -> Response:
    return json_response({"version": OLLAMA_VERSION})


@router.get("")
@router.get("/")
async def root() -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")
