"""Embeddings: lingxi embedding's ``/v1/embeddings`` first, another embedder (Ollama) when it fails."""

from __future__ import annotations

import logging

from opro.backends.base import Embedder
from services.clients import EmbeddingClient
from services.errors import LingxiError

log = logging.getLogger("lingxi.opro")


class LingxiEmbedder:
    def __init__(
        self, base_url: str, *, model: str | None = None, api_key: str | None = None, timeout_s: float = 60.0
    ) -> None:
        self.model = model
        self.client = EmbeddingClient(base_url, api_key=api_key, timeout_s=timeout_s)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await self.client.embed(texts, model=self.model)

    async def aclose(self) -> None:
        await self.client.aclose()


class FallbackEmbedder:
    """Ask ``primary``; on any service error ask ``fallback`` (the seed's Xinference → Ollama)."""

    def __init__(self, primary: Embedder, fallback: Embedder | None) -> None:
        self.primary = primary
        self.fallback = fallback

    async def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return await self.primary.embed(texts)
        except LingxiError as exc:
            if self.fallback is None:
                raise
            log.warning("embedding service failed (%s); falling back to Ollama", exc.message)
            return await self.fallback.embed(texts)

    async def aclose(self) -> None:
        await self.primary.aclose()
        if self.fallback is not None:
            await self.fallback.aclose()
