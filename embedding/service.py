"""The embedding service's state: its engine and reranker, their loading, readiness and names.

Routes call this; it calls the engines. It holds no HTTP and no torch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import numpy as np

from embedding.config import Settings
from embedding.engines import build_engine, build_reranker
from embedding.engines.base import EmbeddingEngine, Embeddings, EmbedInput, InputType, Reranker
from embedding.vectors import truncate
from services.errors import LingxiError, NotFound, NotReady, UpstreamError, UpstreamTimeout
from services.fetch import SafeFetcher
from services.health import Health, Status

log = logging.getLogger("lingxi.embedding")
RETRY_S = (1, 2, 5, 10, 30)  # an unreachable upstream is probed again after these pauses (then every 30 s)


class EmbeddingService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = Status.loading
        self.detail: str | None = "loading the embedding model"
        self.engine: EmbeddingEngine | None = None
        self.reranker: Reranker | None = None
        try:
            self.engine = build_engine(settings)
            self.reranker = build_reranker(settings, self.engine)
        except NotReady as exc:
            self.status, self.detail = Status.not_configured, exc.message
        self.fetcher = SafeFetcher(
            allowed_hosts=settings.allowed_hosts,
            timeout_s=settings.fetch_timeout_s,
            max_bytes=min(settings.fetch_max_bytes, settings.max_image_bytes),  # it only fetches images
        )

    # --- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the engine and reranker (run as a background task: /health says loading meanwhile)."""
        if self.engine is None or self.reranker is None:
            return
        for attempt in itertools.count():
            try:
                await self.engine.start()
                await self.reranker.start()
                self._check_dimension()
            except (UpstreamError, UpstreamTimeout) as exc:
                pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                self.status, self.detail = Status.error, f"{exc.message}; retrying in {pause} s"
                await asyncio.sleep(pause)
                continue
            except LingxiError as exc:
                self.status, self.detail = Status.error, exc.message
                log.error("embedding engine failed to start: %s", exc.message)
                return
            self.status, self.detail = Status.ok, None
            return

    def _check_dimension(self) -> None:
        model_dim = self.info_dimension()
        wanted = self.settings.dimension
        if wanted is not None and model_dim is not None and not 1 <= wanted <= model_dim:
            raise NotReady(f"EMBEDDING_DIMENSION={wanted} but the model's dimension is {model_dim}")

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if self.reranker is not None:
            await self.reranker.aclose()
        if self.engine is not None:
            await self.engine.aclose()

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
            raise NotReady(f"the embedding service is not ready: {self.detail}")
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
        if self.status is not Status.ok or self.engine is None or self.reranker is None:
            raise NotReady(f"the embedding service is not ready: {self.detail}")
        return self.engine, self.reranker

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
            "supports_images": self.supports_images,
            "rerank_method": self.reranker.method if self.reranker else None,
        }
        return Health(self.status, self.detail, extra)
