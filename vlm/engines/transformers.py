"""In-process Qwen-VL (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) through transformers.

``AutoModelForImageTextToText`` + ``AutoProcessor`` from a local directory; the prompt goes through the
model's own chat template with the image in the user turn. Generation runs in one worker thread (a bounded
waiting line → 429), streaming through transformers' streamer, and stops early when the client leaves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.engine import Engine, require_settings
from services.errors import BadRequest, NotFound, NotReady
from services.health import Health, Status
from vlm.config import Settings
from vlm.engines.base import DescribeRequest
from vlm.engines.worker import GenerationWorker

log = logging.getLogger("lingxi.vlm")


def pick_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def pick_dtype(setting: str, device: str) -> Any:
    import torch

    if setting == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[setting]
    except KeyError:
        raise ValueError(f"VLM_DTYPE must be auto, bfloat16, float16 or float32, not {setting!r}") from None


class TransformersEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "model_path")
        self.settings = settings
        self.path = Path(settings.model_path or "")
        self.name = settings.model_name or self.path.name
        self.worker = GenerationWorker(settings.queue_size)
        self.extra = {"engine": "transformers", "model": self.name}
        self.model: Any = None
        self.processor: Any = None
        self.control_tokens: list[str] = []
        self.device = "cpu"

    async def health(self) -> Health:
        return Health(Status.ok, None, {**self.extra, "device": self.device})

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path} is not a directory")
        self.device = pick_device(self.settings.device)
        dtype = pick_dtype(self.settings.dtype, self.device)
        self.processor = AutoProcessor.from_pretrained(self.path)
        added = self.processor.tokenizer.get_added_vocab()
        self.control_tokens = sorted((token for token in added if token.startswith("<")), key=len, reverse=True)
        model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=dtype)
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]
        log.info("vlm model %s loaded on %s (%s)", self.name, self.device, dtype)

    async def aclose(self) -> None:
        self.worker.shutdown()

    def _check(self, request: DescribeRequest) -> None:
        if request.model is not None and request.model != self.name:
            raise NotFound(f"model {request.model!r} is not served here; this vlm serves {self.name!r}")
        self.worker.check_room()

    def _without_control_tokens(self, prompt: str) -> str:
        """The prompt with the model's own markers (``<|im_end|>``, ``<|image_pad|>``...) taken out."""
        for token in self.control_tokens:
            prompt = prompt.replace(token, "")
        return prompt

    def _inputs(self, request: DescribeRequest) -> Any:
        """The model's inputs: chat template with the image, then the processor (runs off the event loop)."""
        prompt = self._without_control_tokens(request.prompt)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        try:
            inputs = self.processor(text=[text], images=[request.image], return_tensors="pt")
        except ValueError as exc:  # e.g. "absolute aspect ratio must be smaller than 200"
            raise BadRequest(f"the model cannot take this image: {exc}") from exc
        return inputs

    def _generate_kwargs(self, request: DescribeRequest, cancelled: threading.Event) -> dict[str, Any]:
        from transformers import StoppingCriteria, StoppingCriteriaList

        class StopWhenCancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "stopping_criteria": StoppingCriteriaList([StopWhenCancelled()]),
        }
        if request.temperature is not None:
            if request.temperature == 0:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=request.temperature)
        return kwargs

    def _run(self, request: DescribeRequest, inputs: Any, cancelled: threading.Event, streamer: Any = None) -> str:
        import torch

        if cancelled.is_set():  # the client left while this waited in line
            return ""
        try:
            with torch.inference_mode():
                inputs = inputs.to(self.device)
                kwargs = self._generate_kwargs(request, cancelled)
                output = self.model.generate(**inputs, **kwargs, streamer=streamer)
        except BaseException as exc:
            if streamer is not None:
                streamer.end()  # wake the reader; it then sees this exception through the future
            if isinstance(exc, torch.OutOfMemoryError):
                raise NotReady("the model ran out of memory on this request; send a smaller image") from exc
            raise
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self.processor.decode(new_tokens, skip_special_tokens=True))

    async def describe(self, request: DescribeRequest) -> str:
        self._check(request)
        inputs = await asyncio.to_thread(self._inputs, request)
        cancelled = threading.Event()
        future = self.worker.submit(lambda: self._run(request, inputs, cancelled))
        try:
            return await asyncio.wrap_future(future)
        finally:
            cancelled.set()

    async def stream(self, request: DescribeRequest) -> AsyncIterator[str]:
        from transformers import AsyncTextIteratorStreamer

        self._check(request)
        inputs = await asyncio.to_thread(self._inputs, request)  # a bad image fails here, before any byte is sent
        streamer = AsyncTextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()
        future = self.worker.submit(lambda: self._run(request, inputs, cancelled, streamer))
        return self._relay(streamer, future, cancelled)

    async def _relay(self, streamer: Any, future: Any, cancelled: threading.Event) -> AsyncIterator[str]:
        try:
            async for chunk in streamer:
                if chunk:
                    yield chunk
            await asyncio.wrap_future(future)  # raises what generation raised, if anything
        finally:
            cancelled.set()
