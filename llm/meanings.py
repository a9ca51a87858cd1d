"""Which numbered source a sentence says, by meaning: the embedding service's vectors of the sentence, of each
source as the model was shown it (title and snippet) and of the question.

This finds the source of a sentence that shares no words with it, above all one in the other language (the
embedded default, use-multilingual-v3, puts a sentence and its translation close together). A sentence is
attributed to the source it is most similar to when that similarity is at least ``CLOSE`` and leads the next
source's by ``AHEAD``, and when the sentence is closer to that source than to the question (a sentence that
says the question back, in other words or in the other language, is closest to the question). Without the
embedding service (not configured, down, or answering in an unexpected shape) nothing is attributed by
meaning; that is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import numpy as np

from llm.siblings import Siblings
from llm.web_answer import Found
from services.errors import LingxiError

log = logging.getLogger("lingxi.llm")
CLOSE = 0.4  # the least cosine similarity of a sentence and the source it is attributed to
AHEAD = 0.1  # by how much that source's similarity leads the next one's
EMBEDDING_TIMEOUT = httpx.Timeout(15.0, connect=2.0)  # the answer waits on it: a slow service is given up on
warned: set[str] = set()  # the kinds of reason already logged


def warn_once(kind: str, reason: str) -> None:
    if kind not in warned:
        warned.add(kind)
        log.warning("answers with sources: sentences are attributed by shared words only: %s", reason)


class Meanings:
    """The sources of sentences by meaning, for one answer; the question and sources are embedded on first use."""

    def __init__(self, siblings: Siblings | None, found: Found) -> None:
        self.siblings = siblings
        self.found = found
        self.question: np.ndarray | None = None  # a unit vector, as each row of ``sources`` is
        self.sources = np.zeros((0, 0), dtype=np.float32)  # one row per source, in ``found.sources``' order
        self.off = siblings is None or not siblings.embedding.url or not found.sources
        if siblings is not None and not siblings.embedding.url:
            warn_once("unset", f"the embedding service is not configured (set {siblings.embedding.setting})")

    async def sources_of(self, sentences: Sequence[str]) -> list[int | None]:
        """The number of the source each sentence says, or None where none does (see the module's doc)."""
        if self.off or not sentences:
            return [None] * len(sentences)
        texts = list(sentences)
        if self.question is None:
            texts += [self.found.question, *(f"{s.title}\n{s.snippet}" for s in self.found.sources)]
        vectors = await self.embed(texts)
        if vectors is None:
            return [None] * len(sentences)
        if self.question is None:
            self.question, self.sources = vectors[len(sentences)], vectors[len(sentences) + 1 :]
        return [self.closest(vector) for vector in vectors[: len(sentences)]]

    def closest(self, sentence: np.ndarray) -> int | None:
        assert self.question is not None
        similarity = self.sources @ sentence
        order = np.argsort(-similarity, kind="stable")
        best = float(similarity[order[0]])
        runner_up = float(similarity[order[1]]) if len(order) > 1 else -1.0
        if best >= CLOSE and best - runner_up >= AHEAD and best > float(self.question @ sentence):
            return self.found.sources[int(order[0])].number
        return None

    async def embed(self, texts: list[str]) -> np.ndarray | None:
        """The texts' unit vectors from the embedding service; None (and off from then on) when it cannot give
        them."""
        assert self.siblings is not None
        try:
            body = await self.siblings.call(
                self.siblings.embedding, "POST", "/v1/embeddings", json={"input": texts}, timeout=EMBEDDING_TIMEOUT
            )
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
        except (LingxiError, KeyError, TypeError, ValueError) as exc:
            warn_once("failed", f"the embedding service gave no vectors ({exc})")
            self.off = True
            return None
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
