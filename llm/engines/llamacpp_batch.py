"""The scheduler that batches every request of a llama.cpp model (``llamacpp_model.Model``).

``Scheduler`` is the one thread that touches the model's context. Requests wait in its queue and take
a free sequence; each ``llama_decode`` carries the next token of every sequence that is generating
plus prompt tokens of the ones still reading theirs (up to ``n_batch``), so concurrent requests
share each pass over the weights (continuous batching, as llama.cpp's own server does). Before each
decode it sets the threads (``cpu_threads``) unless they are fixed. A job that is cancelled, hits a
stop, its ``max_tokens`` or end of generation frees its sequence (and its KV cache) at once; the
prompt of a ``cache_prompt`` job stays in the freed sequence's cache, and the next such job starts in
the free sequence whose cached prompt shares the longest prefix with its own, reading only the rest.
A job without ``cache_prompt`` clears every cached prompt first, so it decodes as on an empty cache.
"""

from __future__ import annotations

import asyncio
import codecs
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm.engines.cpu_threads import ThreadChooser
from llm.engines.llamacpp_model import N_BATCH, DecodeError, Model, Sampling, closing


@dataclass
class Job:
    prompt: list[int]
    max_new_tokens: int
    sampling: Sampling
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    on_release: Callable[[], None] = lambda: None  # run on the event loop once the job has left the scheduler
    cache_prompt: bool = False  # start from a cached prefix of the prompt; leave the prompt cached when done
    chain: Any = None  # the llama.cpp sampler chain, made by Model.samplers
    grammar: Any = None
    # scheduler state
    seq: int = -1
    fed: int = 0  # prompt tokens in the KV cache
    generated: int = 0
    last: int = 0  # the token sampled last, fed in the next batch
    output: int = -1  # its row in the batch's logits
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))

    outbox: list[tuple[str, Any]] = field(default_factory=list)  # events of this step, sent together

    def push(self, kind: str, value: Any) -> None:
        """Called from the scheduler thread; ``send`` hands the step's events to the event loop."""
        self.outbox.append((kind, value))

    def send(self) -> None:
        if self.outbox:
            events, self.outbox = self.outbox, []
            self.call(deliver, self.events, events)

    def call(self, function: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the event loop has closed (shutdown): nobody is listening any more
            pass


def deliver(queue: asyncio.Queue[tuple[str, Any]], events: list[tuple[str, Any]]) -> None:
    for event in events:
        queue.put_nowait(event)


class Scheduler:
    """The thread that owns the context: admits jobs into free sequences and decodes them together."""

    def __init__(self, model: Model, parallel: int, threads: ThreadChooser | None = None) -> None:
        """``threads``: picks the threads before each decode; None keeps the model's own."""
        self.model = model
        self.threads = threads
        self.free = list(range(parallel - 1, -1, -1))
        self.cached: dict[int, list[int]] = {}  # free sequence → the prompt its KV cache still holds
        self.waiting: deque[Job] = deque()
        self.active: list[Job] = []
        self.wake = threading.Condition()
        self.stopping = False
        self.steps = 0  # llama_decode calls so far: requests decoded together share them
        self.prompt_tokens = 0  # prompt tokens decoded so far (a cached prefix is not decoded again)
        self.batch = model.lib.llama_batch_init(N_BATCH, 0, 1)
        self.thread = threading.Thread(target=self.run, name="llm-llamacpp", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        with self.wake:
            self.waiting.append(job)
            self.wake.notify()

    def stop(self) -> None:
        with self.wake:
            self.stopping = True
            self.wake.notify()
        self.thread.join(timeout=30)
        self.model.lib.llama_batch_free(self.batch)

    def run(self) -> None:
        while True:
            with self.wake:
                while not self.stopping and not self.active and not self.waiting:
                    self.wake.wait()
                if self.stopping:
                    break
                while self.free and self.waiting:
                    self.admit(self.waiting.popleft())
            for job in [job for job in self.active if job.cancel.is_set()]:
                self.release(job, None)
            if self.active:
                self.step()
        for job in [*self.active, *self.waiting]:
            self.release(job, ("error", DecodeError("the llm service is shutting down")))

    def admit(self, job: Job) -> None:
        """Give ``job`` a free sequence: with ``cache_prompt`` the one whose cached prompt it shares most of."""
        if not job.cache_prompt:
            for seq in list(self.cached):
                self.model.forget(seq)
            self.cached.clear()
            job.seq = self.free.pop()
        else:
            job.seq = max(reversed(self.free), key=lambda seq: shared_prefix(self.cached.get(seq, []), job.prompt))
            self.free.remove(job.seq)
            keep = min(shared_prefix(self.cached.pop(job.seq, []), job.prompt), len(job.prompt) - 1)
            if keep > 0 and self.model.forget_from(job.seq, keep):
                job.fed = keep  # the last prompt token is always decoded: its logits give the first token
            else:
                self.model.forget(job.seq)
        self.active.append(job)

    def step(self) -> None:
        """One ``llama_decode``: a token for each generating job, then prompt chunks; then sample."""
        batch, budget = self.batch, N_BATCH
        batch.n_tokens = 0
        sampled: list[Job] = []
        for job in self.active:
            if job.fed == len(job.prompt):
                self.add(job.last, job.fed + job.generated - 1, job, output=True)
                sampled.append(job)
                budget -= 1
        for job in self.active:
            if job.fed < len(job.prompt) and budget > 0:
                chunk = job.prompt[job.fed : job.fed + budget]
                for i, token in enumerate(chunk):
                    done = job.fed + i == len(job.prompt) - 1
                    self.add(token, job.fed + i, job, output=done)
                job.fed += len(chunk)
                budget -= len(chunk)
                self.prompt_tokens += len(chunk)
                if job.fed == len(job.prompt):
                    sampled.append(job)
        if self.threads is not None:
            self.model.set_threads(self.threads.threads())
        status = self.model.decode(batch)
        self.steps += 1
        if status != 0:
            error = DecodeError(f"llama.cpp could not decode (status {status})")
            for job in list(self.active):
                self.release(job, ("error", error))
            return
        for job in sampled:
            self.advance(job)
            job.send()

    def add(self, token: int, position: int, job: Job, *, output: bool) -> None:
        batch = self.batch
        i = batch.n_tokens
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, position, 1, output
        batch.seq_id[i][0] = job.seq
        if output:
            job.output = i
        batch.n_tokens = i + 1

    def advance(self, job: Job) -> None:
        try:
            close = job.grammar is not None and closing(job.generated, job.max_new_tokens, job.sampling.closing_reserve)
            token = self.model.sample(job.chain, job.grammar, job.output, close=close)
        except Exception as exc:  # a sampler failing is that request's error, not the scheduler's end
            self.release(job, ("error", exc))
            return
        if self.model.is_end(token):
            self.release(job, ("end", ("stop", job.generated)))
            return
        job.generated += 1
        job.last = token
        text = job.decoder.decode(self.model.piece(token))
        if text:
            job.push("text", text)
        if job.generated >= job.max_new_tokens:
            self.release(job, ("end", ("length", job.generated)))

    def release(self, job: Job, event: tuple[str, Any] | None) -> None:
        """End ``job``: free its sequence and samplers, then tell its consumer (not when it cancelled)."""
        if job in self.active:
            self.active.remove(job)
            cache = job.cache_prompt and job.fed and (event is None or event[0] != "error")
            if cache and self.model.forget_from(job.seq, job.fed):
                self.cached[job.seq] = job.prompt[: job.fed]
            else:
                self.model.forget(job.seq)
            self.free.append(job.seq)
        elif job in self.waiting:
            self.waiting.remove(job)
        self.model.free_samplers(job.chain, job.grammar)
        job.chain = job.grammar = None
        if event is not None:
            if event[0] == "end":
                tail = job.decoder.decode(b"", final=True)
                if tail:
                    job.push("text", tail)
            job.push(*event)
        job.send()
        job.call(job.on_release)


def shared_prefix(cached: list[int], prompt: list[int]) -> int:
    """How many tokens ``prompt`` begins with that ``cached`` begins with too."""
    shared = 0
    for held, wanted in zip(cached, prompt, strict=False):
        if held != wanted:
            break
        shared += 1
    return shared
