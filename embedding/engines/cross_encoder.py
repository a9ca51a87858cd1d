"""A cross-encoder reranker from a local dir (bge-reranker, Qwen3-Reranker seq-cls, ms-marco MiniLM)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from embedding.engines.sentence_transformers import load_model_dir, resolve_device
from services.engine import Engine
from services.errors import NotReady

log = logging.getLogger("lingxi.embedding")


class CrossEncoderReranker(Engine):
    method = "cross-encoder"

    def __init__(self, path: Path, device: str = "auto", batch_size: int = 64) -> None:
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.model: Any = None
        self.lock = asyncio.Lock()  # one scoring at a time: the model uses every core

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        from sentence_transformers import CrossEncoder

        path = load_model_dir(self.path, "reranker")
        device, _ = resolve_device(self.device)
        try:
            self.model = CrossEncoder(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise NotReady(f"could not load the reranker from {path}: {exc}") from exc
        log.info("loaded reranker from %s on %s", path, device)

    async def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        if self.model is None:
            raise NotReady("the reranker is still loading")
        async with self.lock:
            return await asyncio.to_thread(self._score, query, documents)

    def _score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        pairs = [(query, doc) for doc in documents]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        tokens = 0
        tokenizer = getattr(self.model, "tokenizer", None)
        if callable(tokenizer):
            limit = getattr(self.model, "max_seq_length", None) or 10**9
            encoded = tokenizer([query] * len(documents), documents, truncation=False, verbose=False)
            tokens = sum(min(len(ids), limit) for ids in encoded["input_ids"])
        return [float(s) for s in scores], tokens
