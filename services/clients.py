"""Typed async clients for sibling services (embedding, llm), with timeouts and retries.

Retries happen only when nothing reached the server (connection refused/reset before the request
was sent), so a slow generation is never run twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.errors import LingxiError, UpstreamError, UpstreamTimeout, upstream_status_error


class ServiceClient:
    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        return await self._request("POST", path, json=payload)

    async def get_json(self, path: str) -> Any:
        return await self._request("GET", path)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.request(method, path, **kwargs)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.retries:
                    raise UpstreamError(f"{self.name} service at {self.base_url} is unreachable") from exc
                await asyncio.sleep(0.2 * 2**attempt)
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(f"{self.name} service at {self.base_url} timed out") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"{self.name} service at {self.base_url} failed: {type(exc).__name__}") from exc
        raise_for_upstream_status(response, f"{self.name} service")
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(f"{self.name} service answered with something that is not JSON") from exc


def raise_for_upstream_status(response: httpx.Response, label: str) -> None:
    """An upstream's error reply as ours, with the message from its body: its 4xx passes through (the
    request was at fault), anything else becomes a 502. A streamed response must be read first."""
    if response.status_code >= 400:
        raise upstream_status_error(response.status_code, f"{label}: {error_message(response)}")


def error_message(response: httpx.Response) -> str:
    """The message inside an error body, whatever its shape (OpenAI, FastAPI, lingxi, opro envelope)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "msg", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:300]


class EmbeddingClient(ServiceClient):
    """lingxi embedding's OpenAI-shaped ``/v1/embeddings``."""

    def __init__(self, base_url: str = "http://127.0.0.1:7202", **kwargs: Any) -> None:
        super().__init__(base_url, name="embedding", **kwargs)

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
            raise UpstreamError("embedding service answered in an unexpected shape") from exc


class LLMClient(ServiceClient):
    """lingxi llm's OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``."""

    def __init__(self, base_url: str = "http://127.0.0.1:7207", **kwargs: Any) -> None:
        kwargs.setdefault("timeout_s", 300.0)
        super().__init__(base_url, name="llm", **kwargs)

    async def chat(self, messages: list[dict[str, str]], *, model: str | None = None, **params: Any) -> str:
        payload: dict[str, Any] = {"messages": messages, **params}
        if model:
            payload["model"] = model
        body = await self.post_json("/v1/chat/completions", payload)
        try:
            return body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise UpstreamError("llm service answered in an unexpected shape") from exc

    async def models(self) -> list[str]:
        body = await self.get_json("/v1/models")
        try:
            return [row["id"] for row in body["data"]]
        except (KeyError, TypeError) as exc:
            raise UpstreamError("llm service answered in an unexpected shape") from exc


__all__ = ["EmbeddingClient", "LLMClient", "LingxiError", "ServiceClient", "error_message"]
