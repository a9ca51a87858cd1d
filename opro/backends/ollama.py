"""Ollama's native API: ``/api/chat``, ``/api/tags`` and ``/api/embed``."""

from __future__ import annotations

from typing import Any

from opro.backends.base import Message
from services.clients import ServiceClient
from services.errors import BadRequest, LingxiError, UpstreamError


class OllamaChat:
    def __init__(self, base_url: str, *, timeout_s: float = 300.0) -> None:
        self.client = ServiceClient(base_url, name="Ollama", timeout_s=timeout_s)

    async def models(self) -> list[str]:
        body = await self.client.get_json("/api/tags")
        try:
            return [str(row.get("name") or row["model"]) for row in body["models"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError("ollama answered /api/tags in an unexpected shape") from exc

    async def chat(
        self, messages: list[Message], *, model: str | None, max_tokens: int, temperature: float | None = None
    ) -> str:
        options: dict[str, Any] = {"num_predict": max_tokens}
        if temperature is not None:
            options["temperature"] = temperature
        payload = {"model": model or "", "messages": messages, "stream": False, "options": options}
        try:
            body = await self.client.post_json("/api/chat", payload)
        except LingxiError as exc:
            if 400 <= exc.status_code < 500:  # the seed's "ollama error: <message>"
                raise BadRequest(f"ollama error: {exc.message}") from exc
            raise
        try:
            return str(body["message"]["content"] or "")
        except (KeyError, TypeError) as exc:
            raise UpstreamError("ollama answered /api/chat in an unexpected shape") from exc

    async def aclose(self) -> None:
        await self.client.aclose()


class OllamaEmbedder:
    def __init__(self, base_url: str, *, model: str, timeout_s: float = 60.0) -> None:
        self.model = model
        self.client = ServiceClient(base_url, name="Ollama (embeddings)", timeout_s=timeout_s)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        body = await self.client.post_json("/api/embed", {"model": self.model, "input": texts})
        try:
            vectors = [list(map(float, row)) for row in body["embeddings"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError("ollama answered /api/embed in an unexpected shape") from exc
        if len(vectors) != len(texts):
            raise UpstreamError("ollama returned a different number of embeddings than texts sent")
        return vectors

    async def aclose(self) -> None:
        await self.client.aclose()
