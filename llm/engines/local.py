"""``local`` engine: a causal LM in-process with transformers (an HF model dir, or GGUF via ``gguf_file=``).

Without ``LLM_MODEL_PATH`` it loads the embedded GGUF (``llm.embedded``), dequantised. The prompt is
built with the tokenizer's chat template. One worker thread runs ``generate``; a
``TextIteratorStreamer`` subclass hands text to the event loop as it is decoded; requests beyond
``max_queue`` waiting for the worker get 429. Closing a stream sets a flag that a stopping criterion
reads after every token, so a client that goes away stops the generation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm import openai_format, structured, tools
from llm.config import ModelRoute, Settings
from llm.embedded import gguf_quantization, model_location
from llm.engines.base import ChatRequest, Chunk, Completion
from llm.messages import StopScanner, stop_strings, template_messages
from services.engine import Engine
from services.errors import BadRequest, TooManyRequests
from services.health import Health, Status

log = logging.getLogger("lingxi.llm")


@dataclass
class Job:
    inputs: dict[str, Any]
    prompt_tokens: int
    max_new_tokens: int
    sampling: dict[str, Any]
    stops: list[str]
    seed: int | None
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)

    def push(self, kind: str, value: Any) -> None:
        """Called from the worker thread."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))


class LocalEngine(Engine):
    def __init__(self, route: ModelRoute, settings: Settings) -> None:
        self.model_path, self.gguf_file = route.engine_model, route.gguf_file
        self.cache_dir = Path(settings.model_cache_dir)
        self.description = f"local model {self.model_path}"
        self.device, self.threads = settings.device, settings.threads
        self.max_tokens, self.max_input_tokens = settings.max_tokens, settings.max_input_tokens
        self.max_queue = settings.local_max_queue
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-local")
        self.pending = 0  # jobs submitted to the worker and not finished; only touched on the event loop
        self.cancelled = 0  # generations stopped early because their client went away or hit a stop string
        self.model: Any = None
        self.tokenizer: Any = None
        self.info: dict[str, Any] = {}

    # --- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        started = time.perf_counter()
        # fails fast, before torch loads
        directory, gguf_file = model_location(self.model_path, self.gguf_file, self.cache_dir)

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.device == "cpu":
            torch.set_num_threads(self.threads or max(1, (os.cpu_count() or 2) // 2))
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        if not tokenizer.chat_template:
            raise ValueError(f"{directory} has no chat template in its tokenizer")
        model = AutoModelForCausalLM.from_pretrained(directory, **kwargs).to(self.device).eval()  # type: ignore[arg-type]  # transformers types .to() oddly
        self.info = {
            "format": "gguf" if gguf_file else "safetensors",
            "family": getattr(model.config, "model_type", "unknown"),
            "parameter_size": f"{model.num_parameters() / 1e6:.0f}M",
            "quantization_level": gguf_quantization(gguf_file),
            "context_length": getattr(model.config, "max_position_embeddings", None),
            "template": tokenizer.chat_template,
        }
        self.tokenizer, self.model = tokenizer, model
        log.info("loaded %s in %.1f s", self.description, time.perf_counter() - started)

    async def aclose(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)

    async def health(self) -> Health:
        return Health(Status.ok)  # loaded: the life cycle reports loading and failures

    def details(self) -> dict[str, Any]:
        return dict(self.info)

    # --- generation ------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest) -> Completion:
        content, finish, counts = [], "stop", {"prompt_tokens": 0, "completion_tokens": 0}
        stream = await self.open_stream(request)
        async for chunk in stream:
            content.append(openai_format.delta_text(chunk))
            choice = openai_format.first_choice(chunk)
            finish = choice.get("finish_reason") or finish
            counts = chunk.get("usage") or counts
        return openai_format.completion(
            request.model, "".join(content), finish, counts["prompt_tokens"], counts["completion_tokens"]
        )

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if self.pending > self.max_queue:  # one generating + max_queue waiting
            raise TooManyRequests(f"{self.description} is busy ({self.pending} generations queued); retry shortly")
        self.pending += 1  # counted from here, so concurrent requests see each other before the first await
        try:
            job = await asyncio.to_thread(self.prepare, request, asyncio.get_running_loop())
            future = asyncio.get_running_loop().run_in_executor(self.worker, self.generate, job)
        except BaseException:
            self.pending -= 1
            raise
        future.add_done_callback(self.finished)
        return self.chunks(request.model, job)

    def finished(self, future: asyncio.Future[None]) -> None:
        self.pending -= 1
        if not future.cancelled() and future.exception() is not None:
            log.error("generation failed", exc_info=future.exception())

    def prepare(self, request: ChatRequest, loop: asyncio.AbstractEventLoop) -> Job:
        params = request.params
        if params.get("n") not in (None, 1):
            raise BadRequest("the local engine generates one choice per request (n must be 1)")
        if structured.json_answer(params) or tools.tool_use(params):
            raise BadRequest(
                "the transformers (local) engine cannot hold its answer to JSON or tool calls; "
                "serve the model as a GGUF with LLM_ENGINE=llamacpp, or from an upstream"
            )
        if request.raw_prompt is not None:
            inputs = self.tokenizer(request.raw_prompt, return_tensors="pt")
        else:
            inputs = self.tokenizer.apply_chat_template(
                template_messages(request.messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        if prompt_tokens > self.max_input_tokens:
            raise BadRequest(f"the prompt is {prompt_tokens} tokens; this model takes at most {self.max_input_tokens}")
        max_new = params.get("max_tokens") or params.get("max_completion_tokens") or self.max_tokens
        stops = stop_strings(params)
        temperature = params.get("temperature")
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature:  # None or 0: greedy, so the same question gets the same answer
            sampling = {"do_sample": True, "temperature": float(temperature)}
            if params.get("top_p") is not None:
                sampling["top_p"] = float(params["top_p"])
            if params.get("top_k") is not None:
                sampling["top_k"] = int(params["top_k"])
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        seed = params.get("seed")
        return Job(inputs, prompt_tokens, min(int(max_new), self.max_tokens), sampling, stops, seed, loop)

    def generate(self, job: Job) -> None:
        """Runs in the worker thread."""
        import torch
        from transformers import StoppingCriteria, TextIteratorStreamer

        if job.cancel.is_set():
            job.push("end", 0)
            return

        class PushingStreamer(TextIteratorStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    job.push("text", text)

        class UntilCancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), job.cancel.is_set(), dtype=torch.bool)

        try:
            if job.seed is not None:
                torch.manual_seed(int(job.seed))
            streamer = PushingStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            with torch.inference_mode():
                output = self.model.generate(
                    **job.inputs,
                    **job.sampling,
                    max_new_tokens=job.max_new_tokens,
                    streamer=streamer,
                    stopping_criteria=[UntilCancelled()],
                    pad_token_id=self.tokenizer.eos_token_id,
                )
            job.push("end", int(output.shape[1]) - job.prompt_tokens)
        except Exception as exc:
            job.push("error", exc)
            raise

    async def chunks(self, model: str, job: Job) -> AsyncIterator[Chunk]:
        chunk_id, created = openai_format.completion_id(), int(time.time())
        scanner = StopScanner(job.stops)
        kept: list[str] = []
        ended = stopped = False
        completion_tokens = 0
        try:
            yield openai_format.chunk(chunk_id, model, created, {"role": "assistant", "content": ""})
            while not stopped:
                kind, value = await job.events.get()
                if kind == "error":
                    raise value
                if kind == "end":
                    ended, completion_tokens = True, value
                    break
                text, stopped = scanner.feed(value)
                if text:
                    kept.append(text)
                    yield openai_format.chunk(chunk_id, model, created, {"content": text})
            rest = scanner.flush()
            if rest:
                kept.append(rest)
                yield openai_format.chunk(chunk_id, model, created, {"content": rest})
            if stopped:  # cut at a stop string: count the tokens that were kept
                completion_tokens = len(self.tokenizer("".join(kept))["input_ids"])
            finish = "length" if ended and completion_tokens >= job.max_new_tokens else "stop"
            counts = openai_format.usage(job.prompt_tokens, completion_tokens)
            yield openai_format.chunk(chunk_id, model, created, {}, finish, counts)
        finally:
            if not ended:  # a stop string, an error, or the client went away: stop generating
                job.cancel.set()
                self.cancelled += 1
