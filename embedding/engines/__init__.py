"""The embedding engines, chosen by ``EMBEDDING_ENGINE`` through ``ENGINES``."""

from __future__ import annotations

from embedding.config import Engine, Settings
from embedding.engines.base import EmbeddingEngine, Reranker
from embedding.engines.cosine import CosineReranker
from embedding.engines.cross_encoder import CrossEncoderReranker
from embedding.engines.sentence_transformers import SentenceTransformersEngine
from embedding.engines.upstream import UpstreamEngine

ENGINES: dict[Engine, type[SentenceTransformersEngine] | type[UpstreamEngine]] = {
    Engine.sentence_transformers: SentenceTransformersEngine,
    Engine.upstream: UpstreamEngine,
}


def build_engine(settings: Settings) -> EmbeddingEngine:
    return ENGINES[settings.engine](settings)


def build_reranker(settings: Settings, engine: EmbeddingEngine) -> Reranker:
    if settings.reranker_path:
        return CrossEncoderReranker(settings.reranker_path, settings.device, settings.max_batch_size)
    return CosineReranker(engine)
