"""Rerank by cosine similarity over the embedding model (used when no reranker model is configured)."""

from __future__ import annotations

from embedding.engines.base import EmbeddingEngine, EmbedInput, InputType
from services.engine import Engine


class CosineReranker(Engine):
    method = "cosine"

    def __init__(self, engine: EmbeddingEngine) -> None:
        self.engine = engine

    async def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        q = await self.engine.embed([EmbedInput(text=query)], InputType.query)
        d = await self.engine.embed([EmbedInput(text=doc) for doc in documents], InputType.document)
        return [float(s) for s in d.vectors @ q.vectors[0]], q.tokens + d.tokens
