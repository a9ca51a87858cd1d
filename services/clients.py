"""The client for a JSON-speaking upstream, and typed clients for sibling services (embedding, llm).

A request is sent again only when no connection could be made (nothing reached the server), so a
slow generation is never run twice. Requests go straight to the client's transport: httpx's client
layer (auth and redirect generators, cookie jar, event hooks) does nothing for these upstreams and
cost ≈ 100 µs of each proxied request (docs/benchmarks.md). A JSON call (``post_json``, ``get_json``)
goes past httpx's ``Request`` and ``Response`` objects too: its head is built once per path, and the
request leaves and its answer comes back as bytes (``KeepAliveTransport.exchange``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from services import fastjson
from services.errors import UpstreamError, UpstreamUnreachable
from services.http11 import Answer
from services.keepalive import KeepAliveTransport
from services.upstream import map_upstream_errors, raise_for_upstream_status, upstream_client

JSON_HEADERS = {"Content-Type": "application/json"}
T = TypeVar("T")


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = f"{name} at {self.base_url}"
        self.retries = retries
        self.transport = KeepAliveTransport(max_connections=max_connections)
        self.http = upstream_client(
            self.base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            transport=self.transport,
        )
        self.timeouts = self.http.timeout.as_dict()
        self.urls: dict[str, httpx.URL] = {}
        self.heads: dict[tuple[str, str], bytes] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def url(self, path: str) -> httpx.URL:
        """``path`` under the base URL, worked out once (httpx parses and joins it on every request)."""
        url = self.urls.get(path)
        if url is None:
            url = self.urls[path] = self.http.build_request("GET", path).url
        return url

    async def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, stream: bool = False
    ) -> httpx.Response:
        """Send ``body`` as JSON; lingxi's errors for a failure and for an upstream status >= 400."""
        content = fastjson.dumps(body) if body is not None else None
        headers = JSON_HEADERS if content is not None else None
        request = self.http.build_request(method, self.url(path), content=content, headers=headers)
        response = await self._with_retries(lambda: self._send_once(request, stream))
        if response.status_code >= 400:
            try:
                with map_upstream_errors(self.label):
                    await response.aread()
            finally:
                await response.aclose()
            raise_for_upstream_status(response, self.label)
        return response

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return await self.call_json("POST", path, fastjson.dumps(body))

    async def get_json(self, path: str) -> Any:
        return await self.call_json("GET", path, None)

    async def call_json(self, method: str, path: str, content: bytes | None) -> Any:
        """The upstream's JSON answer to ``content`` (JSON bytes, or None for no body), as ``send``'s errors."""
        head = self.heads.get((method, path)) or self._head(method, path)
        data = head + b"\r\n" if content is None else b"%sContent-Length: %d\r\n\r\n%s" % (head, len(content), content)
        url = self.url(path)
        answer = await self._with_retries(lambda: self.transport.exchange(url, data, self.timeouts))
        if answer.status >= 400 or has_encoding(answer):  # rare: httpx reads the error or decodes the body
            response = httpx.Response(answer.status, headers=answer.headers, stream=httpx.ByteStream(answer.body))
            with map_upstream_errors(self.label):
                await response.aread()
            raise_for_upstream_status(response, self.label)
            return self.json_of(response.content)
        return self.json_of(answer.body)

    def _head(self, method: str, path: str) -> bytes:
        """The request line and headers httpx would send (the key among them), less the body's length, and
        asking for the body as it is."""
        request = self.http.build_request(method, self.url(path), headers=JSON_HEADERS if method == "POST" else None)
        lines = [b"%s %s HTTP/1.1\r\n" % (method.encode(), request.url.raw_path)]
        for name, value in request.headers.raw:
            if name.lower() not in (b"content-length", b"accept-encoding"):
                lines.append(name + b": " + value + b"\r\n")
        lines.append(b"Accept-Encoding: identity\r\n")
        head = self.heads[(method, path)] = b"".join(lines)
        return head

    async def _with_retries(self, send: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.retries):
            try:
                with map_upstream_errors(self.label):
                    return await send()
            except UpstreamUnreachable:
                await asyncio.sleep(self.retry_delay_s * 2**attempt)
        with map_upstream_errors(self.label):
            return await send()

    async def _send_once(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """What ``httpx.AsyncClient.send`` does for a request built by ``self.http``, less its client layer."""
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


def has_encoding(answer: Answer) -> bool:
    """Whether the body came compressed (an upstream that ignored ``Accept-Encoding: identity``)."""
    return any(name.lower() == b"content-encoding" and value.lower() != b"identity" for name, value in answer.headers)


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
