"""A cross-encoder reranker from a local dir (bge-reranker, Qwen3-Reranker seq-cls, ms-marco MiniLM).

On the CPU its forward pass runs on ONNX Runtime (``EMBEDDING_BACKEND``, ``embedding/engines/onnx.py``),
on a GPU on torch; tokenisation and the score's activation stay sentence-transformers' own.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np

from embedding.config import Settings
from embedding.engines.onnx import OnnxForward, use_onnx
from embedding.engines.sentence_transformers import load_model_dir, load_onnx, resolve_device, seen_tokens
from services.engine import Engine
from services.errors import NotReady

log = logging.getLogger("lingxi.embedding")


class CrossEncoderReranker(Engine):
    method = "cross-encoder"

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.settings = settings
        self.batch_size = settings.max_batch_size
        self.model: Any = None
        self.onnx: OnnxForward | None = None
        self.lock = asyncio.Lock()  # one scoring at a time: the model uses every core

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        from sentence_transformers import CrossEncoder

        path = load_model_dir(self.path, "reranker")
        device, _ = resolve_device(self.settings.device)
        try:
            self.model = CrossEncoder(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise NotReady(f"could not load the reranker from {path}: {exc}") from exc
        self.model.eval()
        if use_onnx(self.settings, device, supports_images=False):
            self.onnx = load_onnx(self.model, "scores", path, self.settings, bf16_by_default=False)
        log.info("loaded reranker from %s on %s", path, "cpu, " + self.onnx.name if self.onnx else device)

    async def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        if self.model is None:
            raise NotReady("the reranker is still loading")
        async with self.lock:
            return await asyncio.to_thread(self._score, query, documents)

    def _score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        pairs = [(query, doc) for doc in documents]
        if self.onnx is not None:
            return self._score_onnx(pairs)
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        tokens = 0
        tokenizer = getattr(self.model, "tokenizer", None)
        if callable(tokenizer):
            limit = getattr(self.model, "max_seq_length", None) or 10**9
            encoded = tokenizer([query] * len(documents), documents, truncation=False, verbose=False)
            tokens = sum(min(len(ids), limit) for ids in encoded["input_ids"])
        return [float(s) for s in scores], tokens

    def _score_onnx(self, pairs: list[tuple[str, str]]) -> tuple[list[float], int]:
        import torch

        assert self.onnx is not None
        scores: list[float] = []
        tokens = 0
        for start in range(0, len(pairs), self.batch_size):
            features = self.model.preprocess(pairs[start : start + self.batch_size])
            logits = torch.from_numpy(self.onnx.run(features))
            if self.model.activation_fn is not None:  # as CrossEncoder.predict: sigmoid for one label
                logits = self.model.activation_fn(logits)
            scores += np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)[:, 0].tolist()
            tokens += sum(seen_tokens(features, None)[0])
        return scores, tokens
