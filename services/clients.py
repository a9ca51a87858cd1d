"""The client for a JSON-speaking upstream, and typed clients for sibling services (embedding, llm).

``ServiceClient`` holds one pooled ``httpx.AsyncClient`` for its upstream (``services.upstream``):
bodies go out and come back as JSON through orjson, failures and error replies become lingxi's
errors, and a request that never left (no connection could be made: the upstream is starting, or
restarting) goes again after a short backoff, ``retries`` times at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services import fastjson
from services.errors import UpstreamError
from services.upstream import (
    aiohttp_transport,
    client_options,
    map_upstream_errors,
    never_sent,
    raise_for_upstream_status,
)

JSON_HEADERS = {"Content-Type": "application/json"}


class ServiceClient:
    """One upstream speaking JSON over a pooled client; its failures and error replies raise lingxi's errors."""

    retry_delay_s = 0.2  # doubled on each retry

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_connections: int = 100,
        retries: int = 2,
        ca_bundle: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = f"{name} at {self.base_url}"
        self.retries = retries
        settings = client_options(
            self.base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            ca_bundle=ca_bundle,
        )
        self.transport = transport or aiohttp_transport(settings)
        self.http = httpx.AsyncClient(transport=self.transport, **settings)
        # What every request carries, made once: httpx's client would merge them again on each request.
        self.urls: dict[str, httpx.URL] = {}
        self.headers = {
            False: httpx.Headers(self.http.headers),
            True: httpx.Headers({**self.http.headers, **JSON_HEADERS}),
        }
        self.extensions = {"timeout": self.http.timeout.as_dict()}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, stream: bool = False
    ) -> httpx.Response:
        """Send ``body`` as JSON; lingxi's errors for a failure and for an upstream status >= 400. With
        ``stream`` the body is left unread (the caller closes the response)."""
        content = fastjson.dumps(body) if body is not None else None
        request = httpx.Request(
            method,
            self.url(path),
            content=content,
            headers=self.headers[content is not None],
            extensions=self.extensions,
        )
        response = await self._send(request, stream)
        if response.status_code >= 400:
            try:
                with map_upstream_errors(self.label):
                    await response.aread()
            finally:
                await response.aclose()
            raise_for_upstream_status(response, self.label)
        return response

    def url(self, path: str) -> httpx.URL:
        url = self.urls.get(path)
        if url is None:
            url = self.urls[path] = httpx.URL(self.base_url + path)
        return url

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self.json_of((await self.send("POST", path, body)).content)

    async def get_json(self, path: str) -> Any:
        return self.json_of((await self.send("GET", path)).content)

    async def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                with map_upstream_errors(self.label):
                    return await self._send_once(request, stream)
            except UpstreamError as exc:
                if attempt >= self.retries or not never_sent(exc.__cause__):
                    raise
            await asyncio.sleep(self.retry_delay_s * 2**attempt)
            attempt += 1

    async def _send_once(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """What ``self.http.send`` does, less httpx's client layer (auth and redirect flows, cookie jar, event
        hooks: nothing these upstreams use); the request carries the client's headers and timeouts."""
        response = await self.transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()  # closes the response at its end: the connection goes back to the pool
            except BaseException:
                await response.aclose()
                raise
        return response

    def json_of(self, body: bytes) -> Any:
        try:
            return fastjson.loads(body)
        except ValueError as exc:
            raise UpstreamError(f"{self.label} answered with something that is not JSON") from exc


class EmbeddingClient(ServiceClient):
    """lingxi embedding's OpenAI-shaped ``/v1/embeddings``."""

    def __init__(self, base_url: str = "http://127.0.0.1:7202", **kwargs: Any) -> None:
        super().__init__(base_url, name="the embedding service", **kwargs)

    async def embed(
        self, texts: list[str], *, input_type: str = "document", model: str | None = None
    ) -> list[list[float]]:
        payload: dict[str, Any] = {"input": texts, "input_type": input_type}
        if model:
            payload["model"] = model
        body = await self.post_json("/v1/embeddings", payload)
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            return [row["embedding"] for row in rows]
        except (KeyError, TypeError) as exc:
            raise UpstreamError(f"{self.label} answered in an unexpected shape") from exc


class LLMClient(ServiceClient):
    """An OpenAI-compatible chat API (lingxi llm by default); ``base_url`` ends in ``/v1``, as the openai SDK's."""

    def __init__(self, base_url: str = "http://127.0.0.1:7207/v1", **kwargs: Any) -> None:
        kwargs.setdefault("timeout_s", 300.0)
        super().__init__(base_url, name="the LLM", **kwargs)

    async def chat(self, messages: list[dict[str, str]], *, model: str | None = None, **params: Any) -> str:
        """The reply to ``messages``; ``params`` (max_tokens, temperature, ...) left as None are not sent."""
        payload: dict[str, Any] = {"messages": messages, **{k: v for k, v in params.items() if v is not None}}
        if model:
            payload["model"] = model
        body = await self.post_json("/chat/completions", payload)
        try:
            return str(body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(f"{self.label} answered /chat/completions in an unexpected shape") from exc

    async def models(self) -> list[str]:
        body = await self.get_json("/models")
        try:
            return [str(row["id"]) for row in body["data"]]
        except (KeyError, TypeError) as exc:
            raise UpstreamError(f"{self.label} answered /models in an unexpected shape") from exc
