"""A vision model behind an OpenAI-compatible chat completions API (vLLM, SGLang, a cloud API).

The image always travels as a ``data:`` URL, so upstreams that cannot (or may not) fetch URLs still work.
Upstream failures become lingxi's errors in the kernel's client: its 4xx passes through, 5xx and
broken replies → 502, timeouts → 504.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.clients import ServiceClient
from services.engine import Engine, require_settings
from services.errors import LingxiError, UpstreamError
from services.health import Health, Status
from services.upstream import map_upstream_errors
from vlm.config import Settings
from vlm.engines.base import DescribeRequest

HEALTH_TIMEOUT_S = 3.0


def image_data_url(image: Any) -> str:
    """The (RGB, already limited) image as a JPEG ``data:`` URL."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "upstream_url", "upstream_model")
        self.settings = settings
        self.base_url = (settings.upstream_url or "").rstrip("/")
        self.client = ServiceClient(
            self.base_url,
            name="the vision upstream",
            api_key=settings.upstream_api_key,
            timeout_s=settings.upstream_timeout_s,
            retries=0,
            ca_bundle=settings.upstream_ca_bundle,
        )
        self.extra = {"engine": "openai", "model": settings.upstream_model, "upstream": self.base_url}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def health(self) -> Health:
        """Ready when the upstream answers its model list (any answer below 500 but 401/403 means it is up)."""
        try:
            with map_upstream_errors(self.client.label):
                response = await self.client.http.get("/models", timeout=HEALTH_TIMEOUT_S)
        except LingxiError as exc:
            return Health(Status.error, exc.message, self.extra)
        if response.status_code in (401, 403):
            return Health(Status.error, f"upstream {self.base_url} refused VLM_UPSTREAM_API_KEY", self.extra)
        if response.status_code >= 500:
            return Health(Status.error, f"upstream {self.base_url} answered HTTP {response.status_code}", self.extra)
        return Health(Status.ok, None, self.extra)

    async def _payload(self, request: DescribeRequest, stream: bool) -> dict[str, Any]:
        image_url = await asyncio.to_thread(image_data_url, request.image)  # JPEG encoding is CPU work
        content = [
            {"type": "text", "text": request.prompt},
            {"type": "image_url", "image_url": {"url": image_url}},
        ]
        payload: dict[str, Any] = {
            "model": request.model or self.settings.upstream_model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    async def describe(self, request: DescribeRequest) -> str:
        response = await self.client.send("POST", "/chat/completions", await self._payload(request, stream=False))
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(f"{self.client.label} sent a reply that is not a chat completion") from exc
        return content if isinstance(content, str) else ""

    async def stream(self, request: DescribeRequest) -> AsyncIterator[str]:
        payload = await self._payload(request, stream=True)
        response = await self.client.send("POST", "/chat/completions", payload, stream=True)
        return self._relay(response)

    async def _relay(self, response: httpx.Response) -> AsyncIterator[str]:
        try:
            with map_upstream_errors(self.client.label):
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    text = self._delta(data)
                    if text:
                        yield text
        finally:
            await response.aclose()

    @staticmethod
    def _delta(data: str) -> str:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise UpstreamError("the vision upstream sent a malformed stream event") from exc
        if not isinstance(event, dict):
            raise UpstreamError("the vision upstream sent a malformed stream event")
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(f"upstream: {message}")
        try:
            content = event["choices"][0]["delta"].get("content") if event.get("choices") else None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamError("the vision upstream sent a malformed stream event") from exc
        return content if isinstance(content, str) else ""
