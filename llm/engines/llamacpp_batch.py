"""llama.cpp through llama-cpp-python's C API: the model, and the scheduler that batches every request.

``Model`` loads a GGUF file and owns its llama.cpp context (a KV cache with ``parallel`` sequences).
``Scheduler`` is the one thread that touches that context. Requests wait in its queue and take a
free sequence; each ``llama_decode`` carries the next token of every sequence that is generating
plus prompt tokens of the ones still reading theirs (up to ``n_batch``), so concurrent requests
share each pass over the weights (continuous batching, as llama.cpp's own server does). Every
sequence has its own sampler chain and, when constrained, its own grammar. A job that is cancelled,
hits a stop, its ``max_tokens`` or end of generation frees its sequence (and its KV cache) at once.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("lingxi.llm")
N_BATCH = 512  # tokens per llama_decode: one per generating sequence, the rest for prompts
TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


class DecodeError(RuntimeError):
    pass


@dataclass
class Sampling:
    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    grammar: str | None = None  # GBNF the answer must follow


@dataclass
class Job:
    prompt: list[int]
    max_new_tokens: int
    sampling: Sampling
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    on_release: Callable[[], None] = lambda: None  # run on the event loop once the job has left the scheduler
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


CONVERSIONS = {"f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0"}


def converted(path: Path, kind: str, cache_dir: Path, threads: int) -> Path:
    """``path`` re-encoded as ``kind`` with llama.cpp's quantizer, once: later loads reuse the file."""
    import llama_cpp as lib

    target = cache_dir / f"{path.stem}.{kind.upper()}.gguf"
    if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{target.name}.{os.getpid()}.partial"
    params = lib.llama_model_quantize_default_params()
    params.ftype = getattr(lib, CONVERSIONS[kind])
    params.allow_requantize = True
    params.nthread = threads
    try:
        if lib.llama_model_quantize(str(path).encode(), str(partial).encode(), params) != 0:
            raise ValueError(f"llama.cpp could not convert {path} to {kind}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def holding_the_gil(lib: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Short llama.cpp calls that keep the GIL (ctypes' CDLL releases it for every call).

    Taking the GIL back can wait for the 5 ms switch interval while the event loop runs Python, and a
    step makes a few calls per sequence: releasing it only for ``llama_decode`` keeps batching fast.
    """
    held = ctypes.PyDLL(lib.llama_cpp._lib._name)
    functions = {}
    for name in names:
        function, binding = getattr(held, name), getattr(lib, name)
        function.argtypes, function.restype = binding.argtypes, binding.restype
        functions[name] = function
    return functions


class Model:
    """A GGUF model with a context of ``parallel`` sequences of ``seq_tokens`` each."""

    def __init__(self, path: str, *, threads: int, parallel: int, seq_tokens: int) -> None:
        import llama_cpp as lib

        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's load chatter
        self.lib = lib
        lib.llama_backend_init()
        self.model = lib.llama_model_load_from_file(path.encode(), lib.llama_model_default_params())
        if not self.model:
            raise ValueError(f"llama.cpp could not load {path}")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = lib.llama_vocab_n_tokens(self.vocab)
        self.seq_tokens = min(seq_tokens, lib.llama_model_n_ctx_train(self.model))
        params = lib.llama_context_default_params()
        params.n_ctx = self.seq_tokens * parallel
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = parallel
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        # one KV buffer for all sequences: attention then reads only the cells in use; per-sequence
        # buffers read each sequence's whole (padded) buffer, which here halved 8-stream throughput
        params.kv_unified = True
        self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise ValueError(f"llama.cpp could not make a context of {params.n_ctx} tokens for {path}")
        self.memory = lib.llama_get_memory(self.ctx)
        self.ends = {token for token in range(self.n_vocab) if lib.llama_vocab_is_eog(self.vocab, token)}
        self.fast = holding_the_gil(lib, ("llama_sampler_sample", "llama_sampler_apply", "llama_sampler_accept"))
        self.pieces: dict[int, bytes] = {}
        self.candidates = np.zeros(self.n_vocab, dtype=TOKEN_DATA)
        self.candidates["id"] = np.arange(self.n_vocab)

    def close(self) -> None:
        self.lib.llama_free(self.ctx)
        self.lib.llama_model_free(self.model)

    # --- what the model says about itself ---------------------------------------------------------
    def meta(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(256)
        size = self.lib.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer))
        return buffer.value.decode(errors="replace") if size >= 0 else None

    def chat_template(self) -> str | None:
        template = self.lib.llama_model_chat_template(self.model, None)
        return template.decode() if template else None

    def n_params(self) -> int:
        return int(self.lib.llama_model_n_params(self.model))

    def token_text(self, token: int) -> str:
        buffer = ctypes.create_string_buffer(64)
        size = self.lib.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, True)
        return buffer.raw[: max(size, 0)].decode(errors="replace")

    def special_tokens(self) -> tuple[str, str]:
        """The text of the BOS and EOS tokens, for chat templates that write them."""
        lib = self.lib
        return self.token_text(lib.llama_vocab_bos(self.vocab)), self.token_text(lib.llama_vocab_eos(self.vocab))

    # --- text <-> tokens (thread-safe: the vocabulary is read-only) --------------------------------
    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode()
        size = len(data) + 8
        tokens = (self.lib.llama_token * size)()
        count = self.lib.llama_tokenize(self.vocab, data, len(data), tokens, size, add_special, True)
        if count < 0:
            size = -count
            tokens = (self.lib.llama_token * size)()
            count = self.lib.llama_tokenize(self.vocab, data, len(data), tokens, size, add_special, True)
        return list(tokens[:count])

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (special tokens: none)."""
        piece = self.pieces.get(token)
        if piece is None:
            buffer = ctypes.create_string_buffer(64)
            size = self.lib.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
            piece = self.pieces[token] = buffer.raw[: max(size, 0)]
        return piece

    # --- samplers ---------------------------------------------------------------------------------
    def samplers(self, sampling: Sampling) -> tuple[Any, Any]:
        """The sampler chain and the grammar sampler (or None); raises ValueError for a grammar llama.cpp rejects."""
        lib = self.lib
        grammar = None
        if sampling.grammar is not None:
            grammar = lib.llama_sampler_init_grammar(self.vocab, sampling.grammar.encode(), b"root")
            if not grammar:
                raise ValueError("llama.cpp could not parse the grammar")
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if sampling.temperature:
            if sampling.top_k:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(sampling.top_k))
            if sampling.top_p is not None and sampling.top_p < 1:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(sampling.temperature))
            seed = sampling.seed if sampling.seed is not None else lib.LLAMA_DEFAULT_SEED
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        return chain, grammar

    def free_samplers(self, job: Job) -> None:
        for sampler in (job.chain, job.grammar):
            if sampler:
                self.lib.llama_sampler_free(sampler)
        job.chain = job.grammar = None

    def sample(self, job: Job) -> int:
        """The next token of ``job``: its chain's pick, checked against its grammar.

        As in llama.cpp's common sampler, the grammar first only checks the token the chain picked;
        only when it breaks the grammar are the whole vocabulary's logits masked and sampled again.
        """
        lib, fast = self.lib, self.fast
        token = int(fast["llama_sampler_sample"](job.chain, self.ctx, job.output))
        if job.grammar is None:
            return token
        if not self.allowed(job.grammar, token):
            logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self.ctx, job.output), shape=(self.n_vocab,))
            candidates = self.candidates.copy()
            candidates["logit"] = logits
            array = lib.llama_token_data_array(
                data=candidates.ctypes.data_as(lib.llama_token_data_p), size=self.n_vocab, selected=-1, sorted=False
            )
            fast["llama_sampler_apply"](job.grammar, ctypes.byref(array))
            fast["llama_sampler_apply"](job.chain, ctypes.byref(array))
            chosen = array.data[array.selected]
            if chosen.logit == float("-inf"):  # accepting it would abort the process
                raise DecodeError("the grammar allows no next token")
            token = int(chosen.id)
        fast["llama_sampler_accept"](job.grammar, token)
        return token

    def allowed(self, grammar: Any, token: int) -> bool:
        lib = self.lib
        single = lib.llama_token_data(id=token, logit=1.0, p=0.0)
        array = lib.llama_token_data_array(data=ctypes.pointer(single), size=1, selected=-1, sorted=False)
        self.fast["llama_sampler_apply"](grammar, ctypes.byref(array))
        return bool(single.logit != float("-inf"))

    def is_end(self, token: int) -> bool:
        return token in self.ends

    def forget(self, seq: int) -> None:
        self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)


class Scheduler:
    """The thread that owns the context: admits jobs into free sequences and decodes them together."""

    def __init__(self, model: Model, parallel: int) -> None:
        self.model = model
        self.free = list(range(parallel - 1, -1, -1))
        self.waiting: deque[Job] = deque()
        self.active: list[Job] = []
        self.wake = threading.Condition()
        self.stopping = False
        self.steps = 0  # llama_decode calls so far: requests decoded together share them
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
                    job = self.waiting.popleft()
                    job.seq = self.free.pop()
                    self.active.append(job)
            for job in [job for job in self.active if job.cancel.is_set()]:
                self.release(job, None)
            if self.active:
                self.step()
        for job in [*self.active, *self.waiting]:
            self.release(job, ("error", DecodeError("the llm service is shutting down")))

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
                if job.fed == len(job.prompt):
                    sampled.append(job)
        status = self.model.lib.llama_decode(self.model.ctx, batch)
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
            token = self.model.sample(job)
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
            self.model.forget(job.seq)
            self.free.append(job.seq)
        elif job in self.waiting:
            self.waiting.remove(job)
        self.model.free_samplers(job)
        if event is not None:
            if event[0] == "end":
                tail = job.decoder.decode(b"", final=True)
                if tail:
                    job.push("text", tail)
            job.push(*event)
        job.send()
        job.call(job.on_release)
