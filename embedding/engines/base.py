"""What every embedding engine and reranker offers, and the typed objects they exchange."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from services.engine import Engine


class InputType(str, enum.Enum):
    query = "query"
    document = "document"


@dataclass(frozen=True)
class EmbedInput:
    """One thing to embed: a text, or an RGB ``PIL.Image.Image`` already decoded and resized."""

    text: str | None = None
    image: Any = None

    @property
    def is_image(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (n, dim) float32, each row L2-normalised
    tokens: int  # text tokens the model saw (after truncation)
    truncated: int = 0  # inputs cut to the model's token limit


@dataclass
class ModelInfo:
    """What /health, /v1/models and the routes report about the loaded model."""

    name: str
    path: str
    device: str
    cuda_available: bool
    dimension: int | None = None
    max_tokens: int | None = None
    supports_images: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class EmbeddingEngine(Engine, Protocol):
    info: ModelInfo

    async def embed(self, inputs: list[EmbedInput], input_type: InputType) -> Embeddings:
        """Vectors for ``inputs``, in order. Raises BadRequest for input the model cannot take."""


class Reranker(Engine, Protocol):
    method: str  # "cross-encoder" or "cosine": what the rerank responses say

    async def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        """One relevance score per document (higher is better) and the tokens used."""
