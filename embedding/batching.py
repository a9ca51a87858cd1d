"""The batching queue: inputs of concurrent requests are encoded together, off the event loop.

Requests put their inputs in one FIFO queue (split into pieces of at most ``max_batch`` inputs).
One worker takes the oldest piece, waits up to ``max_wait_s`` for more inputs of the same kind
(modality and input type) to fill a batch, runs the blocking ``encode`` in a thread, and hands each
request its rows. While the model runs one batch the next one fills. The queue holds at most
``max_queued`` inputs; a request that would overflow it gets a 429.

An idle model starts at once (``max_wait_s`` 0, the default). But a call that answered several
requests is likely to see their clients come back at once: for a short while after it (a quarter of
the call's time, at most ``FOLLOW_UP_MOST_S``) the next batch waits for as many inputs as that call
had, so the returning clients share one call instead of one or two of them taking a call alone and
the rest the next (64 single-text clients on 2 cores: batches of 1 and 63 in turn, 7-11 % fewer
texts/s). A lone client, one request at a time, never waits: its call answered one request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from services.errors import TooManyRequests

if TYPE_CHECKING:
    from embedding.config import Settings

log = logging.getLogger("lingxi.embedding")

FOLLOW_UP_SHARE = 0.25  # of the last call's time: how long its answered clients are waited for
FOLLOW_UP_MOST_S = 0.02


@dataclass(frozen=True)
class BatchOutput:
    vectors: np.ndarray  # (n, dim) float32
    tokens: list[int]  # per input
    truncated: list[bool]  # per input


Encode = Callable[[Hashable, list[Any]], BatchOutput]


@dataclass
class _Job:
    size: int
    future: asyncio.Future[BatchOutput]
    parts: dict[int, BatchOutput] = field(default_factory=dict)  # offset → rows
    filled: int = 0

    def deliver(self, offset: int, rows: BatchOutput) -> None:
        if len(rows.tokens) == self.size:  # the whole request in one piece, as most are
            self.filled = self.size
            if not self.future.done():
                self.future.set_result(rows)
            return
        self.parts[offset] = rows
        self.filled += len(rows.tokens)
        if self.filled == self.size and not self.future.done():
            ordered = [self.parts[k] for k in sorted(self.parts)]
            self.future.set_result(
                BatchOutput(
                    np.concatenate([p.vectors for p in ordered]),
                    [t for p in ordered for t in p.tokens],
                    [t for p in ordered for t in p.truncated],
                )
            )


@dataclass
class _Piece:
    job: _Job
    key: Hashable
    offset: int
    items: list[Any]
    arrived: float


class BatchQueue:
    def __init__(
        self, encode: Encode, *, max_batch: int, max_wait_s: float, max_queued: int, merge: bool = True
    ) -> None:
        self.encode = encode
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queued = max_queued
        self.merge = merge
        self.pieces: deque[_Piece] = deque()
        self.queued = 0
        self.batches = 0
        self._arrived = asyncio.Event()
        self._follow_up = (0, 0.0)  # (inputs, until): the next batch waits for these, see the module's doc
        self._worker: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, encode: Encode, settings: Settings) -> BatchQueue:
        """The queue an engine runs its encode behind, sized by the service's batching settings."""
        return cls(
            encode,
            max_batch=settings.max_batch_size,
            max_wait_s=settings.max_wait_ms / 1000,
            max_queued=settings.max_queued_inputs,
            merge=settings.batching,
        )

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="embedding-batch-worker")

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        for piece in self.pieces:
            if not piece.job.future.done():
                piece.job.future.cancel()
        self.pieces.clear()

    async def submit(self, key: Hashable, items: list[Any]) -> BatchOutput:
        if not items:
            raise ValueError("nothing to encode")
        if self.queued + len(items) > self.max_queued:
            raise TooManyRequests(f"the embedding queue is full ({self.queued} inputs waiting); retry shortly")
        job = _Job(len(items), asyncio.get_running_loop().create_future())
        now = time.monotonic()
        for offset in range(0, len(items), self.max_batch):
            self.pieces.append(_Piece(job, key, offset, items[offset : offset + self.max_batch], now))
        self.queued += len(items)
        self._arrived.set()
        return await job.future  # cancelled with the request: its pieces are skipped

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            items = [item for piece in batch for item in piece.items]
            self._follow_up = (0, 0.0)
            started = time.monotonic()
            try:
                output = await asyncio.to_thread(self.encode, batch[0].key, items)
            except Exception as exc:  # handed to the requests of this batch, which render it
                for piece in batch:
                    if not piece.job.future.done():
                        piece.job.future.set_exception(exc)
                continue
            self.batches += 1
            answered = 0
            start = 0
            for piece in batch:
                end = start + len(piece.items)
                rows = BatchOutput(output.vectors[start:end], output.tokens[start:end], output.truncated[start:end])
                start = end
                if not piece.job.future.done():
                    piece.job.deliver(piece.offset, rows)
                    answered += piece.job.future.done()
            if answered > 1:
                ended = time.monotonic()
                self._follow_up = (len(items), ended + min((ended - started) * FOLLOW_UP_SHARE, FOLLOW_UP_MOST_S))

    def _drop_cancelled(self) -> None:
        while self.pieces and self.pieces[0].job.future.done():
            self.queued -= len(self.pieces.popleft().items)

    async def _next_batch(self) -> list[_Piece]:
        self._drop_cancelled()
        while not self.pieces:
            self._arrived.clear()
            await self._arrived.wait()
            self._drop_cancelled()
        first = self.pieces[0]
        if self.merge:
            await self._fill(first.key, self.max_batch, first.arrived + self.max_wait_s)
            await self._fill(first.key, *self._follow_up)
        return self._take(first.key)

    async def _fill(self, key: Hashable, inputs: int, deadline: float) -> None:
        """Until ``inputs`` inputs of ``key`` wait in the queue, or ``deadline`` (``time.monotonic()``) passes."""
        while self._count(key) < inputs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _count(self, key: Hashable) -> int:
        return sum(len(p.items) for p in self.pieces if p.key == key and not p.job.future.done())

    def _take(self, key: Hashable) -> list[_Piece]:
        """Pieces of ``key`` in arrival order, up to max_batch inputs (the last one may be split)."""
        batch: list[_Piece] = []
        room = self.max_batch
        kept: deque[_Piece] = deque()
        while self.pieces:
            piece = self.pieces.popleft()
            if piece.job.future.done():
                self.queued -= len(piece.items)
                continue
            if room == 0 or piece.key != key or (batch and not self.merge):
                kept.append(piece)
                continue
            if len(piece.items) > room:
                rest = _Piece(piece.job, key, piece.offset + room, piece.items[room:], piece.arrived)
                piece = _Piece(piece.job, key, piece.offset, piece.items[:room], piece.arrived)
                kept.append(rest)
            batch.append(piece)
            room -= len(piece.items)
            self.queued -= len(piece.items)
        self.pieces = kept
        return batch
