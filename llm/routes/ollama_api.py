"""Ollama's inference API under ``/ollama``: ``chat``, ``generate``, ``embed`` and the legacy ``embeddings``.

Point an Ollama client at ``http://host:7207/ollama``. ``chat`` and ``generate`` stream NDJSON by
default (Ollama's ``stream`` defaults to true) and run on the llm's engines; ``embed`` and
``embeddings`` are answered by the embedding service (``LLM_EMBEDDING_URL``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llm import openai_format
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.models import ModelRegistry, ModelRoute
from llm.routes.common import ModelsDep, SiblingsDep, complete, json_response, open_stream
from llm.routes.ollama_common import PREFIX, capabilities, embedding_models, now, parse
from llm.schemas import (
    Message,
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
)
from llm.siblings import Siblings
from llm.structured import response_format_of
from services.errors import BadRequest, NotFound, UpstreamError
from services.streaming import ndjson_response

router = APIRouter(prefix=PREFIX)


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
    models: ModelRegistry, model: str | None, build: Callable[[ModelRoute], ChatRequest], stream: bool, shape: str
) -> Response:
    """Run one request and shape it as Ollama's chat (``message``) or generate (``response``) answer."""
    started = time.perf_counter()
    if not stream:
        route, completion = await complete(models, model, build)
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
    route, chunks = await open_stream(models, model, build)
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
async def chat(request: Request, models: ModelsDep) -> Response:
    body = await parse(request, OllamaChatRequest)
    if not body.messages:  # Ollama's way to load a model: answer done at once
        route, _ = models.resolve(body.model)
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
        route, _ = models.resolve(body.model)
        if "tools" not in capabilities(route):
            engine = route.engine.value
            raise BadRequest(f"{route.name} does not support tools (the {engine} engine has no tool calling)")
        params["tools"] = body.tools
    if (body.model_extra or {}).get("tool_choice") is not None:  # not Ollama's: lingxi takes OpenAI's values
        params["tool_choice"] = body.model_extra["tool_choice"]  # type: ignore[index]

    def build(route: ModelRoute) -> ChatRequest:
        return ChatRequest(route.engine_model, messages, params)

    return await answer(models, body.model, build, body.stream, "chat")


@router.post("/api/generate")
async def generate(request: Request, models: ModelsDep) -> Response:
    body = await parse(request, OllamaGenerateRequest)
    if not body.prompt:
        route, _ = models.resolve(body.model)
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

    return await answer(models, body.model, build, body.stream, "generate")


async def embed_texts(
    models: ModelRegistry, hub: Siblings, model: str | None, texts: list[str], dimensions: int | None
) -> dict[str, Any]:
    """The embedding service's ``/v1/embeddings`` answer for ``texts`` (its errors raised as ours)."""
    if model in models.routes:
        names = await embedding_names(models, hub)
        raise BadRequest(f"{model} is a chat model and makes no embeddings; embedding models: {names}")
    payload: dict[str, Any] = {"input": texts}
    if model:
        payload["model"] = model
    if dimensions:
        payload["dimensions"] = dimensions
    return await hub.call(hub.embedding, "POST", "/v1/embeddings", json=payload)


async def embedding_names(models: ModelRegistry, hub: Siblings) -> str:
    names = await embedding_models(models, hub)
    return ", ".join(names) or f"none (is the embedding service at {hub.embedding.url} running?)"


async def known_embedding_model(models: ModelRegistry, hub: Siblings, model: str | None) -> None:
    """An empty input embeds nothing, but an unknown model is still a 404."""
    if model and model not in await embedding_models(models, hub):
        raise NotFound(f"model {model!r} not found; embedding models: {await embedding_names(models, hub)}")


def vectors(answer: Any) -> list[list[float]]:
    try:
        return [row["embedding"] for row in sorted(answer["data"], key=lambda row: row["index"])]
    except (KeyError, TypeError) as exc:
        raise UpstreamError("the embedding service answered in an unexpected shape") from exc


@router.post("/api/embed")
async def embed(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    body = await parse(request, OllamaEmbedRequest)
    if body.truncate is False:
        raise BadRequest(
            "truncate=false is not supported: the embedding service cuts every input to the model's token limit"
        )
    texts = body.input
    if not texts:  # Ollama's way to load a model
        await known_embedding_model(models, hub, body.model)
        return json_response({"model": body.model or "", "embeddings": []})
    started = time.perf_counter()
    answer = await embed_texts(models, hub, body.model, texts, body.dimensions)
    embeddings = vectors(answer)  # checks the answer's shape first
    return json_response(
        {
            "model": body.model or answer.get("model", ""),
            "embeddings": embeddings,
            "total_duration": int((time.perf_counter() - started) * 1e9),
            "load_duration": 0,
            "prompt_eval_count": (answer.get("usage") or {}).get("prompt_tokens", 0),
        }
    )


@router.post("/api/embeddings")
async def embeddings(request: Request, models: ModelsDep, hub: SiblingsDep) -> Response:
    body = await parse(request, OllamaEmbeddingsRequest)
    if not body.prompt:
        await known_embedding_model(models, hub, body.model)
        return json_response({"embedding": []})
    answer = await embed_texts(models, hub, body.model, [body.prompt], None)
    return json_response({"embedding": vectors(answer)[0]})
