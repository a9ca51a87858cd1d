"""The HTTP side shared by the ``openai`` and ``ollama`` engines.

One pooled ``httpx.AsyncClient`` per upstream; connect and read timeouts; a retry only when the
connection failed, so nothing reached the upstream and a generation is never run twice; httpx's
exceptions translated once, here, into lingxi's errors (502 naming the upstream, 504 on timeout,
the upstream's own 4xx passed through).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from llm.config import ModelRoute, Settings
from services.clients import raise_for_upstream_status
from services.engine import Engine
from services.errors import LingxiError, UpstreamError, UpstreamTimeout
from services.health import Health, Status

RETRY_DELAY_S = 0.1


class Upstream:
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = f"{kind} upstream at {self.base_url}"
        self.retries = retries
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None, *, stream: bool = False):
        """Send a request; raise lingxi errors for failures and for an upstream status >= 400."""
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        request = self.http.build_request(method, path, content=content, headers=headers)
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.send(request, stream=stream)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise UpstreamError(f"{self.label} is unreachable ({type(exc).__name__})") from exc
                await asyncio.sleep(RETRY_DELAY_S * 2**attempt)
            except httpx.HTTPError as exc:
                raise self.translate(exc) from exc
        if response.status_code >= 400:
            try:
                if stream:
                    await response.aread()
            except httpx.HTTPError as exc:
                raise self.translate(exc) from exc
            finally:
                await response.aclose()
            raise_for_upstream_status(response, self.label)
        return response

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.send("POST", path, body)
        return self.json_of(response)

    async def get_json(self, path: str) -> dict[str, Any]:
        response = await self.send("GET", path)
        return self.json_of(response)

    def json_of(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamError(f"{self.label} answered with something that is not JSON") from exc
        if not isinstance(body, dict):
            raise UpstreamError(f"{self.label} answered with JSON that is not an object")
        return body

    async def lines(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        """The response's lines; closes it when done or when the consumer stops early."""
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self.translate(exc) from exc
        finally:
            await response.aclose()

    def translate(self, exc: BaseException) -> LingxiError:
        if isinstance(exc, LingxiError):
            return exc
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(f"{self.label} timed out ({type(exc).__name__}, read timeout {self.timeout_s:g} s)")
        return UpstreamError(f"{self.label} failed: {type(exc).__name__}")

    def parse_line(self, payload: str) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except ValueError as exc:
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
