"""``ollama`` engine: Ollama's native ``/api/chat`` (NDJSON streaming), answers turned into OpenAI objects."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm import openai_format
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.engines.upstream import RemoteEngine
from services.errors import BadRequest, UpstreamError

OPTION_NAMES = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop"}


def ollama_options(params: dict[str, Any]) -> dict[str, Any]:
    options = {name: params[key] for key, name in OPTION_NAMES.items() if params.get(key) is not None}
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    return options


def text_content(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        message = {**message, "content": "".join(texts)}
    return message


class OllamaEngine(RemoteEngine):
    health_path = "/api/version"

    def body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "stream": stream, "options": ollama_options(request.params)}
        if request.raw_prompt is not None:
            raise BadRequest(f"raw prompts need the local engine; {self.description} takes chat messages")
        body["messages"] = [text_content(message) for message in request.messages]
        if request.params.get("tools"):
            body["tools"] = request.params["tools"]
        response_format = request.params.get("response_format") or {}
        if response_format.get("type") == "json_object":
            body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            body["format"] = (response_format.get("json_schema") or {}).get("schema")
        return body

    async def complete(self, request: ChatRequest) -> Completion:
        answer = await self.upstream.post_json("/api/chat", self.body(request, stream=False))
        message = answer.get("message") or {}
        result = openai_format.completion(
            request.model,
            str(message.get("content") or ""),
            finish_reason(answer),
            int(answer.get("prompt_eval_count") or 0),
            int(answer.get("eval_count") or 0),
        )
        if message.get("thinking"):
            result["choices"][0]["message"]["reasoning_content"] = message["thinking"]
        return result

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self.upstream.send("POST", "/api/chat", self.body(request, stream=True), stream=True)
        return self.chunks(request.model, response)

    async def chunks(self, model: str, response: httpx.Response) -> AsyncIterator[Chunk]:
        chunk_id, created = openai_format.completion_id(), int(time.time())
        lines = self.upstream.lines(response)
        done = False
        try:
            async for line in lines:
                if done or not line.strip():
                    continue  # after the last answer, read on to the end so the connection is reused
                event = self.upstream.parse_line(line)
                if event.get("error"):
                    raise UpstreamError(f"{self.description}: {event['error']}")
                message = event.get("message") or {}
                delta: dict[str, Any] = {}
                if message.get("content"):
                    delta["content"] = message["content"]
                if message.get("thinking"):
                    delta["reasoning_content"] = message["thinking"]
                if event.get("done"):
                    counts = openai_format.usage(
                        int(event.get("prompt_eval_count") or 0), int(event.get("eval_count") or 0)
                    )
                    yield openai_format.chunk(chunk_id, model, created, delta, finish_reason(event), counts)
                    done = True
                    continue
                if delta:
                    yield openai_format.chunk(chunk_id, model, created, delta)
        finally:
            await lines.aclose()


def finish_reason(answer: dict[str, Any]) -> str:
    return "length" if answer.get("done_reason") == "length" else "stop"
