"""``llamacpp`` engine: a GGUF model in-process with llama.cpp (llama-cpp-python) — the embedded default.

Without ``LLM_MODEL_PATH`` it serves an embedded model (``llm.embedded``: Qwen2.5-Coder-0.5B-Instruct
by default), with the sampling settings its authors recommend for requests that name none. Requests share
the model: up to ``parallel`` of them generate at once, batched into each ``llama_decode`` by the
scheduler in ``llamacpp_batch``; ``max_queue`` more may wait, beyond that 429. The prompt comes
from the GGUF's own chat template (Jinja, rendered by llama-cpp-python's formatter). JSON answers
(``response_format``, Ollama's ``format``) and tool calls are grammar-constrained: ``llm.structured``
and ``llm.tools`` build the GBNF, llama.cpp's grammar sampler enforces it token by token, and steers it
to a close as ``max_tokens`` nears, so a constrained answer ends valid. Closing a
stream (the client went away, or a stop string was hit) cancels the job at the next token and
frees its sequence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llm import closing, openai_format, structured, tool_calls, tools
from llm.config import ModelRoute, Settings
from llm.embedded import embedded, gguf_quantization, is_embedded, model_location
from llm.engines.base import SAMPLING_PARAMS, ChatRequest, Chunk, Completion
from llm.engines.cpu_threads import ThreadChooser, available_cores
from llm.engines.llamacpp_batch import Job, Scheduler
from llm.engines.llamacpp_model import DecodeError, Model, Sampling, converted
from llm.messages import StopScanner, stop_strings, template_messages
from services.engine import Engine
from services.errors import BadRequest, LingxiError, NotReady, TooManyRequests
from services.health import Health, Status

RETRY_LATER = {"Retry-After": "5"}
# request parameters that choose how tokens are sampled (OpenAI's names, and Ollama's options as the routes pass them)
log = logging.getLogger("lingxi.llm")


@dataclass
class Plan:
    """A request made ready for the scheduler: its job, and how to shape what comes back."""

    job: Job
    stops: list[str]
    tool_use: tools.ToolUse | None
    finish: str = "stop"  # how the job ended, once it has
    completion_tokens: int = 0


class LlamaCppEngine(Engine):
    def __init__(self, route: ModelRoute, settings: Settings) -> None:
        self.model_path, self.gguf_file = route.engine_model, route.gguf_file
        self.description = f"local model {self.model_path}"
        self.threads = settings.threads  # None: chosen before each decode by how busy the machine is
        known = embedded(self.model_path) if is_embedded(self.model_path) else None
        self.recommended = dict(known.sampling) if known else {}
        self.embedded_convert = known.convert if known else "none"
        self.max_tokens, self.max_input_tokens = settings.max_tokens, settings.max_input_tokens
        self.max_queue, self.parallel = settings.local_max_queue, settings.local_parallel
        self.convert, self.cache_dir = settings.gguf_convert, Path(settings.model_cache_dir)
        self.pending = 0  # jobs submitted and not yet released by the scheduler; only touched on the event loop
        self.cancelled = 0  # generations stopped early because their client went away or hit a stop string
        self.model: Model | None = None
        self.scheduler: Scheduler | None = None
        self.formatter: Any = None
        self.template_takes_tools = False  # the chat template renders ``tools`` itself (Qwen2.5's does)
        self.bos = ""
        self.info: dict[str, Any] = {}

    # --- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    def load(self) -> None:
        started = time.perf_counter()
        directory, gguf_file = model_location(self.model_path, self.gguf_file, self.cache_dir)
        if not gguf_file:
            raise ValueError(
                f"the llamacpp engine reads a .gguf file and {directory} names none "
                "(set LLM_GGUF_FILE, or LLM_ENGINE=local for a transformers model dir)"
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(directory) / gguf_file
        most = self.threads or available_cores()
        kind = self.embedded_convert if self.convert == "auto" else self.convert
        if kind != "none":
            path = converted(path, kind, self.cache_dir, most)
        model = Model(
            str(path),
            threads=most,
            parallel=self.parallel,
            seq_tokens=self.max_input_tokens + self.max_tokens,
        )
        template = model.chat_template()
        if not template:
            model.close()
            raise ValueError(f"{gguf_file} has no chat template (tokenizer.chat_template)")
        self.bos, eos = model.special_tokens()
        self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=self.bos)
        self.template_takes_tools = "tools" in template
        self.info = {
            "format": "gguf",
            "family": model.meta("general.architecture") or "unknown",
            "parameter_size": f"{model.n_params() / 1e6:.0f}M",
            "quantization_level": gguf_quantization(gguf_file),  # the weights' precision, however stored
            "context_length": model.seq_tokens,
            "template": template,
        }
        self.scheduler = Scheduler(model, self.parallel, None if self.threads else ThreadChooser(most))
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
        return self.chunks(request, await self.started(request))

    async def started(self, request: ChatRequest) -> Plan:
        assert self.scheduler is not None
        self.pending += 1  # counted from here, so concurrent requests see each other before the first await
        try:
            plan = await asyncio.to_thread(self.prepare, request, asyncio.get_running_loop())
        except BaseException:
            self.pending -= 1
            raise
        self.scheduler.submit(plan.job)
        return plan

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
        grammar, reserve = None, 0
        if tool_use is not None and tool_use.must_call:
            grammar = tools.call_grammar(tool_use)
            reserve = max(closing.call_reserve(f.name, f.parameters) for f in tool_use.functions)
        elif answer is not None:
            grammar, reserve = structured.json_grammar(answer), closing.reserve(answer.schema)
        text = request.raw_prompt if request.raw_prompt is not None else self.prompt(request.messages, tool_use)
        tokens = self.model.tokenize(text, add_special=not (self.bos and text.startswith(self.bos)))
        if len(tokens) > self.max_input_tokens:
            raise BadRequest(f"the prompt is {len(tokens)} tokens; this model takes at most {self.max_input_tokens}")
        max_new = int(params.get("max_tokens") or params.get("max_completion_tokens") or self.max_tokens)
        max_new = min(max_new, self.max_tokens, self.model.seq_tokens - len(tokens))
        sampling = Sampling(
            **self.sampling_of(params), seed=params.get("seed"), grammar=grammar, closing_reserve=reserve
        )
        try:
            chain, grammar_sampler = self.model.samplers(sampling)
        except ValueError as exc:
            raise BadRequest(f"the answer's grammar was rejected: {exc}") from None
        job = Job(tokens, max_new, sampling, loop, chain=chain, grammar=grammar_sampler, on_release=self.released)
        job.cache_prompt = request.cache_prompt
        return Plan(job, stop_strings(params), tool_use)

    def prompt(self, messages: list[dict[str, Any]], tool_use: tools.ToolUse | None) -> str:
        if self.template_takes_tools:  # calls, results and tools as the model was trained to see them
            turns = tools.native_turns(messages)
            template_tools = tools.template_tools(tool_use) if tool_use is not None else None
        else:
            turns, template_tools = template_messages(tools.template_turns(messages, tool_use)), None
        try:
            return str(self.formatter(messages=turns, tools=template_tools).prompt)
        except Exception as exc:  # the template's raise_exception() or a Jinja error: the messages don't fit it
            raise BadRequest(f"the model's chat template rejects these messages: {exc}") from None

    def sampling_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's sampling settings, each one it leaves out taken from the model's recommended ones."""
        given = {name: params[name] for name in SAMPLING_PARAMS if params.get(name) is not None}
        if params.get("repetition_penalty") is not None:  # vLLM's name for it
            given.setdefault("repeat_penalty", params["repetition_penalty"])
        chosen = {**self.recommended, **given}
        return {name: chosen.get(name) for name in SAMPLING_PARAMS}

    async def chunks(self, request: ChatRequest, plan: Plan) -> AsyncIterator[Chunk]:
        """The job's text as chunks. With tools, an answer that starts like a call is held back and read as
        calls (``llm.tool_calls``); one that only repeats answered calls is written again without tools."""
        chunk_id, created = openai_format.completion_id(), int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Chunk:
            return openai_format.chunk(chunk_id, request.model, created, delta, finish, usage)

        yield chunk({"role": "assistant", "content": ""})
        use, held, mode = plan.tool_use, "", "undecided" if plan.tool_use else "text"
        reader = None
        if use is not None:  # a forced call may repeat an answered one: it was asked for
            reader = tool_calls.CallReader(use, set() if use.must_call else tool_calls.answered_calls(request.messages))
        async with aclosing(self.pieces(plan)) as pieces:
            async for piece in pieces:
                if mode == "text":
                    yield chunk({"content": piece})
                    continue
                held += piece
                if mode == "undecided":
                    decided = tool_calls.may_be_call(held)
                    mode = "undecided" if decided is None else "call" if decided else "text"
                    if mode == "text":
                        yield chunk({"content": held})
                if mode == "call" and reader is not None:
                    reader.read(held)
                    if reader.stop:
                        break  # closing the pieces stops the generation
        calls = reader.new_calls() if reader is not None and mode == "call" else []
        prompt_tokens, completion_tokens, finish = len(plan.job.prompt), plan.completion_tokens, plan.finish
        if reader is not None and reader.calls and not calls:  # only calls the conversation has answered
            answer_from_results = replace(
                request,
                messages=tools.results_as_text(request.messages),
                params={**request.params, "tool_choice": "none"},
            )
            again = await self.started(answer_from_results)
            async with aclosing(self.pieces(again)) as pieces:
                async for piece in pieces:
                    yield chunk({"content": piece})
            prompt_tokens, finish = len(again.job.prompt), again.finish
            completion_tokens += again.completion_tokens
        elif calls:
            yield chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]})
            finish = "tool_calls" if finish == "stop" else finish
        elif use is not None and use.must_call and finish == "length":
            partial = tool_calls.partial_call(held, use)  # as OpenAI: the call as far as it got
            if partial is not None:
                yield chunk({"tool_calls": [{"index": 0, **partial}]})
        elif mode != "text" and held:  # not a call after all, or only whitespace: send it as text
            yield chunk({"content": held})
        yield chunk({}, finish, openai_format.usage(prompt_tokens, completion_tokens))

    async def pieces(self, plan: Plan) -> AsyncGenerator[str, None]:
        """The job's text as it comes, cut at a stop string; ``plan`` learns how it ended.
        Closing this early (the client went away, or the caller has what it needs) stops the job."""
        job, scanner, kept = plan.job, StopScanner(plan.stops), []
        ended = stopped = False
        try:
            while not stopped:
                kind, value = await job.events.get()
                if kind == "error":
                    raise value if isinstance(value, LingxiError) else LingxiError(f"{self.description}: {value}")
                if kind == "end":
                    ended = True
                    plan.finish, plan.completion_tokens = value
                    break
                text, stopped = scanner.feed(value)
                if text:
                    kept.append(text)
                    yield text
            rest = scanner.flush()
            if rest:
                kept.append(rest)
                yield rest
            if stopped:  # cut at a stop string: count the tokens that were kept
                assert self.model is not None
                plan.finish = "stop"
                plan.completion_tokens = len(self.model.tokenize("".join(kept), add_special=False))
        finally:
            if not ended:  # a stop string, an error, or the consumer went away: stop generating
                job.cancel.set()
                self.cancelled += 1
                plan.completion_tokens = plan.completion_tokens or job.generated


__all__ = ["DecodeError", "LlamaCppEngine"]
