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
import math
from collections.abc import Sequence

import httpx

from llm.siblings import Siblings
from llm.web_answer import Found
from services.errors import LingxiError

log = logging.getLogger("lingxi.llm")
CLOSE = 0.4  # the least cosine similarity of a sentence and the source it is attributed to
AHEAD = 0.1  # by how much that source's similarity leads the next one's
EMBEDDING_TIMEOUT = httpx.Timeout(15.0, connect=2.0)  # the answer waits on it: a slow service is given up on
Vector = list[float]
warned: set[str] = set()  # the kinds of reason already logged


def warn_once(kind: str, reason: str) -> None:
    if kind not in warned:
        warned.add(kind)
        log.warning("answers with sources: sentences are attributed by shared words only: %s", reason)


def cosine(a: Vector, b: Vector) -> float:
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


class Meanings:
    """The sources of sentences by meaning, for one answer; the question and sources are embedded on first use."""

    def __init__(self, siblings: Siblings | None, found: Found) -> None:
        self.siblings = siblings
        self.found = found
        self.question: Vector | None = None
        self.sources: list[tuple[int, Vector]] = []
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
            self.question, *shown = vectors[len(sentences) :]
            self.sources = [(source.number, vector) for source, vector in zip(self.found.sources, shown, strict=True)]
        return [self.closest(vector) for vector in vectors[: len(sentences)]]

    def closest(self, sentence: Vector) -> int | None:
        assert self.question is not None
        ranked = sorted(((cosine(sentence, vector), number) for number, vector in self.sources), reverse=True)
        best, number = ranked[0]
        runner_up = ranked[1][0] if len(ranked) > 1 else -1.0
        if best >= CLOSE and best - runner_up >= AHEAD and best > cosine(sentence, self.question):
            return number
        return None

    async def embed(self, texts: list[str]) -> list[Vector] | None:
        """The texts' vectors from the embedding service; None (and off from then on) when it cannot give them."""
        assert self.siblings is not None
        try:
            body = await self.siblings.call(
                self.siblings.embedding, "POST", "/v1/embeddings", json={"input": texts}, timeout=EMBEDDING_TIMEOUT
            )
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
            if len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
        except (LingxiError, KeyError, TypeError, ValueError) as exc:
            warn_once("failed", f"the embedding service gave no vectors ({exc})")
            self.off = True
            return None
        return vectors
