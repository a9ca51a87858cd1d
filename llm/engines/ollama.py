"""``ollama`` engine: Ollama's native ``/api/chat`` (NDJSON streaming), answers turned into OpenAI objects."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm import openai_format
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.engines.upstream import RemoteEngine
from llm.tools import arguments_of
from services.errors import BadRequest, UpstreamError

OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repeat_penalty": "repeat_penalty",
    "repetition_penalty": "repeat_penalty",
    "repeat_last_n": "repeat_last_n",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
}


def ollama_options(params: dict[str, Any]) -> dict[str, Any]:
    options = {name: params[key] for key, name in OPTION_NAMES.items() if params.get(key) is not None}
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    return options


def text_content(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI message as Ollama takes it: text content, tool-call arguments as objects."""
    content = message.get("content")
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        message = {**message, "content": "".join(texts)}
    if message.get("tool_calls"):
        calls = [
            {"function": {**call.get("function", {}), "arguments": arguments_of(call.get("function") or {})}}
            for call in message["tool_calls"]
        ]
        message = {**message, "content": message.get("content") or "", "tool_calls": calls}
    return message


def openai_tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Ollama's ``message.tool_calls`` (arguments as objects) as OpenAI's (arguments as a JSON string)."""
    calls = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments", {})
        calls.append(
            {
                "index": i,
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": function.get("name"),
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
                },
            }
        )
    return calls


class OllamaEngine(RemoteEngine):
    health_path = "/api/version"

    def body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "stream": stream, "options": ollama_options(request.params)}
        if request.raw_prompt is not None:
            raise BadRequest(f"raw prompts need the local engine; {self.description} takes chat messages")
        body["messages"] = [text_content(message) for message in request.messages]
        if request.params.get("tools") and request.params.get("tool_choice") != "none":
            body["tools"] = request.params["tools"]  # Ollama has no tool_choice: "none" is no tools
            if request.params.get("tool_choice") not in (None, "auto"):
                body["tool_choice"] = request.params["tool_choice"]  # Ollama ignores it; a lingxi upstream obeys
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
        calls = openai_tool_calls(message)
        if calls:
            without_index = [{key: value for key, value in call.items() if key != "index"} for call in calls]
            result["choices"][0]["message"]["tool_calls"] = without_index
            result["choices"][0]["finish_reason"] = "tool_calls"
        return result

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self.upstream.send("POST", "/api/chat", self.body(request, stream=True), stream=True)
        return self.chunks(request.model, response)

    async def chunks(self, model: str, response: httpx.Response) -> AsyncIterator[Chunk]:
        chunk_id, created = openai_format.completion_id(), int(time.time())
        lines = self.upstream.lines(response)
        done = called = False
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
                if message.get("tool_calls"):
                    delta["tool_calls"] = openai_tool_calls(message)
                    called = True
                if event.get("done"):
                    counts = openai_format.usage(
                        int(event.get("prompt_eval_count") or 0), int(event.get("eval_count") or 0)
                    )
                    finish = "tool_calls" if called else finish_reason(event)
                    yield openai_format.chunk(chunk_id, model, created, delta, finish, counts)
                    done = True
                    continue
                if delta:
                    yield openai_format.chunk(chunk_id, model, created, delta)
        finally:
            await lines.aclose()


def finish_reason(answer: dict[str, Any]) -> str:
    return "length" if answer.get("done_reason") == "length" else "stop"
