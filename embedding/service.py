"""The embedding service's state: its engine and reranker, their life cycle, readiness and names.

Routes call this; it calls the engines. It holds no HTTP and no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedding.config import Settings
from embedding.engines import Models
from embedding.engines.base import EmbeddingEngine, Embeddings, EmbedInput, InputType, Reranker
from embedding.vectors import truncate
from services.engine import Lifecycle
from services.errors import NotFound
from services.fetch import SafeFetcher
from services.health import Health


class EmbeddingService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifecycle = Lifecycle.build("the embedding model", lambda: Models(settings))
        models = self.lifecycle.engine
        self.engine: EmbeddingEngine | None = models.engine if models else None
        self.reranker: Reranker | None = models.reranker if models else None
        self.fetcher = SafeFetcher(
            allowed_hosts=settings.allowed_hosts,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=min(settings.fetch_max_bytes, settings.max_image_bytes),  # it only fetches images
        )

    # --- what the routes ask ----------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.engine.info.name if self.engine else (self.settings.model_name or "none")

    def served_names(self) -> list[str]:
        if self.engine is None:
            return []
        return [self.model_name, *[a for a in self.settings.model_aliases if a != self.model_name]]

    def resolve_model(self, name: str | None) -> str:
        """The served name for ``name`` (None: the default); 404 listing the served ones otherwise."""
        if self.engine is None:
            self.lifecycle.require()
        if name is None:
            return self.model_name
        if name in self.served_names():
            return name  # an alias is answered under the name the client used
        raise NotFound(f"model {name!r} is not served here; served: {', '.join(self.served_names())}")

    def info_dimension(self) -> int | None:
        return self.engine.info.dimension if self.engine else None

    @property
    def dimension(self) -> int | None:
        """The output dimension when a request does not ask for one."""
        return self.settings.dimension or self.info_dimension()

    @property
    def supports_images(self) -> bool:
        return bool(self.engine and self.engine.info.supports_images)

    def ready(self) -> tuple[EmbeddingEngine, Reranker]:
        models = self.lifecycle.require()
        return models.engine, models.reranker

    async def embed(
        self, inputs: list[EmbedInput], input_type: InputType = InputType.document, dimensions: int | None = None
    ) -> Embeddings:
        engine, _ = self.ready()
        result = await engine.embed(inputs, input_type)
        vectors = truncate(result.vectors, dimensions or self.settings.dimension)
        return Embeddings(np.ascontiguousarray(vectors, dtype=np.float32), result.tokens, result.truncated)

    async def rerank(self, query: str, documents: list[str]) -> tuple[list[float], int, str]:
        _, reranker = self.ready()
        scores, tokens = await reranker.score(query, documents)
        return scores, tokens, reranker.method

    def health(self) -> Health:
        info = self.engine.info if self.engine else None
        extra: dict[str, Any] = {
            "model": self.model_name,
            "model_path": info.path if info else str(self.settings.model_path or ""),
            "device": info.device if info else self.settings.device,
            "cuda_available": bool(info and info.cuda_available),
            "embedding_dimension": self.dimension,
            "max_image_width": self.settings.max_image_width,
            "max_image_height": self.settings.max_image_height,
            "engine": self.settings.engine.value,
            "backend": info.extra.get("backend") if info else None,
            "supports_images": self.supports_images,
            "rerank_method": self.reranker.method if self.reranker else None,
        }
        return self.lifecycle.health(extra)
