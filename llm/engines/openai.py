"""``openai`` engine: any OpenAI-compatible upstream (vLLM, SGLang, Ollama's /v1, cloud APIs).

Requests are forwarded with the upstream's model name; every other OpenAI parameter (tools,
response_format, seed, ...) passes through untouched. Closing a stream closes the upstream
connection, which is how vLLM and SGLang learn to abort the generation.

OpenAI's own route relays the upstream's events (``open_relay``): each one is parsed (to find an
error and the model's name) but sent on as the upstream's bytes, re-encoded only when its ``model``
is not the served name; the events of one read travel on as one block.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import orjson

from llm.engines.base import ChatRequest, Chunk, Completion
from llm.engines.upstream import RemoteEngine
from services.errors import BadRequest, UpstreamError

Event = tuple[bytes, Chunk]  # a ``data:`` line's payload as the upstream sent it, and parsed
LOCAL_ONLY = ("repeat_penalty", "repeat_last_n")  # Ollama's options that OpenAI's API has no name for


class OpenAIEngine(RemoteEngine):
    health_path = "/models"

    def body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        if request.raw_prompt is not None:
            raise BadRequest(f"raw prompts need the local engine; {self.description} takes chat messages")
        params = {name: value for name, value in request.params.items() if name not in LOCAL_ONLY}
        return {**params, "model": request.model, "messages": request.messages, "stream": stream}

    async def complete(self, request: ChatRequest) -> Completion:
        return await self.upstream.post_json("/chat/completions", self.body(request, stream=False))

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        return self.chunks(await self._stream(request))

    async def open_relay(self, request: ChatRequest, served_name: str) -> AsyncIterator[bytes]:
        """As ``open_stream``, as SSE blocks ready to send, each event's ``model`` the served name."""
        return self.relayed(await self._stream(request), served_name)

    async def _stream(self, request: ChatRequest) -> httpx.Response:
        return await self.upstream.send("POST", "/chat/completions", self.body(request, stream=True), stream=True)

    async def chunks(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        batches = self.events(response)
        try:
            async for events in batches:
                for _, chunk in events:
                    yield chunk
        finally:
            await batches.aclose()

    async def relayed(self, response: httpx.Response, served_name: str) -> AsyncIterator[bytes]:
        batches = self.events(response)
        try:
            async for events in batches:
                yield b"".join(b"data: " + renamed(event, served_name) + b"\n\n" for event in events)
        finally:
            await batches.aclose()

    async def events(self, response: httpx.Response) -> AsyncGenerator[list[Event], None]:
        """The upstream's events up to ``data: [DONE]``, those of each read together; an error event raises."""
        batches = self.upstream.line_batches(response)
        done = False
        try:
            async for lines in batches:
                events = []
                for line in lines:
                    if done or not line.startswith(b"data:"):
                        continue  # blank separators, ": keep-alive" comments, "event:" lines
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True  # read on to the end of the body, so the connection goes back to the pool
                        continue
                    chunk = self.upstream.parse_line(payload)
                    if "error" in chunk and "choices" not in chunk:
                        error = chunk["error"]
                        message = error.get("message") if isinstance(error, dict) else error
                        raise UpstreamError(f"{self.description}: {message}")
                    events.append((payload, chunk))
                if events:
                    yield events
        finally:
            await batches.aclose()


def renamed(event: Event, served_name: str) -> bytes:
    payload, chunk = event
    if chunk.get("model") == served_name:
        return payload
    return orjson.dumps({**chunk, "model": served_name})
