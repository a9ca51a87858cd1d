"""The HTTP side shared by the ``openai`` and ``ollama`` engines: the kernel's ``ServiceClient`` (one
pooled client per upstream, a retry only when nothing was sent or the method is idempotent, errors as
lingxi's) plus streamed lines, read as bytes and parsed with orjson.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
import orjson

from llm.config import ModelRoute, Settings
from services.clients import ServiceClient
from services.engine import Engine
from services.errors import LingxiError, UpstreamError
from services.health import Health, Status
from services.upstream import map_upstream_errors


class Upstream(ServiceClient):
    retry_delay_s = 0.1

    def __init__(
        self,
        base_url: str,
        *,
        kind: str,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 300.0,
        max_connections: int = 512,
        retries: int = 2,
        ca_bundle: str | None = None,
    ) -> None:
        super().__init__(
            base_url,
            name=f"the {kind} upstream",
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            retries=retries,
            ca_bundle=ca_bundle,
        )

    def json_of(self, body: bytes) -> dict[str, Any]:
        value = super().json_of(body)
        if not isinstance(value, dict):
            raise UpstreamError(f"{self.label} answered with JSON that is not an object")
        return value

    async def line_batches(self, response: httpx.Response) -> AsyncGenerator[list[bytes], None]:
        """The response's complete lines, as many as each read brought (a line may end in ``\\r``); closes
        the response when done or when the consumer stops early. A batch per read, not a line per
        yield: under load one read holds several events, and they travel on together."""
        pending = b""
        try:
            with map_upstream_errors(self.label):
                async for data in response.aiter_bytes():
                    *lines, pending = (pending + data).split(b"\n")
                    if lines:
                        yield lines
            if pending:
                yield [pending]
        finally:
            await response.aclose()

    async def lines(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """The response's lines one by one (NDJSON), closing it as ``line_batches`` does."""
        batches = self.line_batches(response)
        try:
            async for lines in batches:
                for line in lines:
                    yield line
        finally:
            await batches.aclose()

    def parse_line(self, payload: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"{self.label} streamed a line that is not JSON") from exc
        if not isinstance(event, dict):
            raise UpstreamError(f"{self.label} streamed JSON that is not an object")
        return event


class RemoteEngine(Engine):
    """What the ``openai`` and ``ollama`` engines share: the upstream's life cycle and health probe."""

    health_path = "/"

    def __init__(self, route: ModelRoute, settings: Settings) -> None:
        self.upstream = Upstream(
            str(route.upstream_url),
            kind=route.engine.value,
            api_key=route.upstream_api_key,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            timeout_s=settings.upstream_timeout_s,
            max_connections=settings.upstream_max_connections,
            retries=settings.upstream_retries,
            ca_bundle=route.upstream_ca_bundle,
        )
        self.description = self.upstream.label

    async def aclose(self) -> None:
        await self.upstream.aclose()

    def details(self) -> dict[str, Any]:
        return {"format": "remote", "upstream": self.upstream.base_url}

    async def health(self) -> Health:
        try:
            await self.upstream.get_json(self.health_path)
        except LingxiError as exc:
            return Health(Status.error, exc.message)
        return Health(Status.ok)
