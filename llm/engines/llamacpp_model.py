"""llama.cpp through llama-cpp-python's C API: a GGUF model, its context, and its samplers.

``Model`` loads a GGUF file and owns its llama.cpp context (a KV cache with ``parallel`` sequences);
only the scheduler's thread (``llamacpp_batch``) decodes with it. Each request gets its own sampler
chain (penalties, top-k, top-p, temperature, or greedy) and, when its answer is constrained, its own
grammar sampler. As a constrained answer nears its token budget (its closing reserve, ``llm.closing``),
``sample`` steers it to a close:
tokens that only close strings, arrays and objects (and the end of generation) are favoured, and
the grammar still decides what may come next, so the answer ends as valid JSON in time.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

N_BATCH = 512  # tokens per llama_decode: one per generating sequence, the rest for prompts
TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
CLOSERS = set('"]}')  # a token made only of these (and spaces) closes what is open
# added to logits while closing: a closer the grammar allows wins (a bare one before one with spaces or
# an empty pair like "[]"); a token that starts with a space loses to any other the grammar allows
CLOSING_BIAS, SPACED_CLOSER_BIAS, SPACE_BIAS = 60.0, 30.0, -30.0
DEFAULT_PENALTY_LAST_N = 64  # tokens a repeat penalty looks back over (Ollama's repeat_last_n)


class DecodeError(RuntimeError):
    pass


@dataclass
class Sampling:
    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None  # 1 or None: off
    repeat_last_n: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    grammar: str | None = None  # GBNF the answer must follow
    closing_reserve: int = 0  # the grammar's answer is steered to a close this many tokens before its end

    @property
    def penalised(self) -> bool:
        return bool((self.repeat_penalty or 1) != 1 or self.frequency_penalty or self.presence_penalty)


def only_closes(text: str) -> bool:
    """Whether ``text`` only closes what is open: closers, and empty pairs (``[]``, ``{}``, ``""``)."""
    while True:
        shorter = text.replace('""', "").replace("[]", "").replace("{}", "")
        if shorter == text:
            return set(text) <= CLOSERS
        text = shorter


def closing(generated: int, budget: int, reserve: int) -> bool:
    """Whether a constrained answer with ``generated`` of ``budget`` tokens should now close."""
    return budget - generated <= reserve


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
        """``threads``: the most a decode may use (``set_threads`` changes it between decodes)."""
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
        self.threads = threads
        self.closer_bias = self.closing_bias()  # reads every token's text once (about a second), at load

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self.lib.llama_set_n_threads(self.ctx, threads, threads)
            self.threads = threads

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
        if sampling.penalised:
            last_n = sampling.repeat_last_n if sampling.repeat_last_n is not None else DEFAULT_PENALTY_LAST_N
            last_n = self.seq_tokens if last_n < 0 else last_n  # -1: the whole context, as Ollama has it
            penalties = lib.llama_sampler_init_penalties(
                self.n_vocab,
                last_n,
                sampling.repeat_penalty or 1.0,
                sampling.frequency_penalty or 0.0,
                sampling.presence_penalty or 0.0,
            )
            lib.llama_sampler_chain_add(chain, penalties)
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

    def free_samplers(self, chain: Any, grammar: Any) -> None:
        for sampler in (chain, grammar):
            if sampler:
                self.lib.llama_sampler_free(sampler)

    def sample(self, chain: Any, grammar: Any, row: int, *, close: bool = False) -> int:
        """The next token at batch row ``row``: the chain's pick, checked against the grammar.

        As in llama.cpp's common sampler, the grammar first only checks the token the chain picked;
        only when it breaks the grammar are the whole vocabulary's logits masked and sampled again.
        With ``close``, the grammar's answer is steered to its end (see the module's docstring).
        """
        fast = self.fast
        if grammar is not None and close:
            token = self.closing_token(chain, grammar, row)
        else:
            token = int(fast["llama_sampler_sample"](chain, self.ctx, row))
            if grammar is None:
                return token
            if not self.allowed(grammar, token):
                array, candidates = self.masked(grammar, row)
                fast["llama_sampler_apply"](chain, ctypes.byref(array))
                token = self.chosen(array, candidates, array.selected)
        fast["llama_sampler_accept"](grammar, token)
        return token

    def masked(self, grammar: Any, row: int, bias: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """The whole vocabulary at ``row`` with the tokens ``grammar`` forbids at -inf."""
        lib = self.lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))
        candidates = self.candidates.copy()
        candidates["logit"] = logits if bias is None else logits + bias
        array = lib.llama_token_data_array(
            data=candidates.ctypes.data_as(lib.llama_token_data_p), size=self.n_vocab, selected=-1, sorted=False
        )
        self.fast["llama_sampler_apply"](grammar, ctypes.byref(array))
        return array, candidates

    @staticmethod
    def chosen(array: Any, candidates: np.ndarray, selected: int) -> int:
        if selected < 0 or array.data[selected].logit == float("-inf"):  # accepting it would abort the process
            raise DecodeError("the grammar allows no next token")
        return int(array.data[selected].id)

    def closing_token(self, chain: Any, grammar: Any, row: int) -> int:
        """The grammar-allowed token that closes most directly: closers favoured, then the most likely."""
        array, candidates = self.masked(grammar, row, self.closer_bias)
        token = self.chosen(array, candidates, int(np.argmax(candidates["logit"])))
        self.fast["llama_sampler_accept"](chain, token)  # the penalties remember it
        return token

    def closing_bias(self) -> np.ndarray:
        bias = np.zeros(self.n_vocab, dtype=np.single)
        for token in range(self.n_vocab):
            text = self.piece(token).decode(errors="ignore")
            if self.is_end(token) or (text and set(text) <= CLOSERS):
                bias[token] = CLOSING_BIAS
            elif text.strip() and only_closes(text.strip()):  # spaces, or an empty [] to close at once
                bias[token] = SPACED_CLOSER_BIAS
            elif text[:1].isspace():
                bias[token] = SPACE_BIAS
        return bias

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

    def forget_from(self, seq: int, position: int) -> bool:
        """Drop ``seq``'s cache from ``position`` on, keeping what comes before (False: the model cannot)."""
        return bool(self.lib.llama_memory_seq_rm(self.memory, seq, position, -1))

    def decode(self, batch: Any) -> int:
        return int(self.lib.llama_decode(self.ctx, batch))
