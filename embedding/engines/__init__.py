"""The embedding engines, chosen by ``EMBEDDING_ENGINE`` through ``ENGINES``."""

from __future__ import annotations

from embedding.config import Engine, Settings
from embedding.engines.base import EmbeddingEngine, Reranker
from embedding.engines.cosine import CosineReranker
from embedding.engines.cross_encoder import CrossEncoderReranker
from embedding.engines.sentence_transformers import SentenceTransformersEngine
from embedding.engines.upstream import UpstreamEngine
from embedding.engines.use_multilingual import UseMultilingualEngine
from services.errors import NotReady

ENGINES: dict[Engine, type[UseMultilingualEngine] | type[SentenceTransformersEngine] | type[UpstreamEngine]] = {
    Engine.use_multilingual: UseMultilingualEngine,
    Engine.sentence_transformers: SentenceTransformersEngine,
    Engine.upstream: UpstreamEngine,
}


class Models:
    """The configured engine and the reranker over it (a cross-encoder model, or cosine over the engine),
    started, checked and closed as one."""

    def __init__(self, settings: Settings) -> None:
        self.engine: EmbeddingEngine = ENGINES[settings.engine](settings)
        self.reranker: Reranker = CosineReranker(self.engine)
        if settings.reranker_path:
            self.reranker = CrossEncoderReranker(settings.reranker_path, settings)
        self.dimension = settings.dimension

    async def start(self) -> None:
        await self.engine.start()
        await self.reranker.start()
        model_dim = self.engine.info.dimension
        if self.dimension is not None and model_dim is not None and not 1 <= self.dimension <= model_dim:
            raise NotReady(f"EMBEDDING_DIMENSION={self.dimension} but the model's dimension is {model_dim}")

    async def aclose(self) -> None:
        await self.reranker.aclose()
        await self.engine.aclose()
