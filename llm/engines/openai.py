"""``openai`` engine: any OpenAI-compatible upstream (vLLM, SGLang, Ollama's /v1, cloud APIs).

Requests are forwarded with the upstream's model name; every other OpenAI parameter (tools,
response_format, seed, ...) passes through untouched. Closing a stream closes the upstream
connection, which is how vLLM and SGLang learn to abort the generation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from llm.engines.base import ChatRequest, Chunk, Completion
from llm.engines.upstream import RemoteEngine
from services.errors import BadRequest, UpstreamError


class OpenAIEngine(RemoteEngine):
    health_path = "/models"

    def body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        if request.raw_prompt is not None:
            raise BadRequest(f"raw prompts need the local engine; {self.description} takes chat messages")
        return {**request.params, "model": request.model, "messages": request.messages, "stream": stream}

    async def complete(self, request: ChatRequest) -> Completion:
        return await self.upstream.post_json("/chat/completions", self.body(request, stream=False))

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self.upstream.send("POST", "/chat/completions", self.body(request, stream=True), stream=True)
        return self.chunks(response)

    async def chunks(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        lines = self.upstream.lines(response)
        done = False
        try:
            async for line in lines:
                if done or not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True  # read on to the end of the body, so the connection goes back to the pool
                    continue
                event = self.upstream.parse_line(payload)
                if "error" in event and "choices" not in event:
                    error = event["error"]
                    message = error.get("message") if isinstance(error, dict) else error
                    raise UpstreamError(f"{self.description}: {message}")
                yield event
        finally:
            await lines.aclose()
