"""``upstream``: forward to an OpenAI-compatible ``/v1/embeddings`` (TEI, vLLM pooling, Xinference, Ollama).

Heavy models scale out on an engine built for it; lingxi keeps its API, limits, dimensions and
rerank on top. Inputs are sent in pieces of ``max_batch_size`` (TEI refuses big batches).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from embedding.config import Settings
from embedding.engines.base import Embeddings, EmbedInput, InputType, ModelInfo
from services.clients import ServiceClient
from services.engine import Engine, require_settings
from services.errors import BadRequest, UpstreamError

log = logging.getLogger("lingxi.embedding")


class UpstreamEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "upstream_url")
        self.settings = settings
        self.url = (settings.upstream_url or "").rstrip("/")
        self.upstream_model = settings.upstream_model
        name = settings.model_name or settings.upstream_model or "upstream"
        self.info = ModelInfo(name=name, path=self.url, device="upstream", cuda_available=False)
        self.upstream = ServiceClient(
            self.url,
            name="the embedding upstream",
            api_key=settings.upstream_api_key,
            timeout_s=settings.upstream_timeout_s,
            retries=0,
            ca_bundle=settings.upstream_ca_bundle,
        )
        self.prompts = {
            InputType.query: settings.query_prompt or "",
            InputType.document: settings.document_prompt or "",
        }

    async def start(self) -> None:
        """Learn the dimension from one probe; raises UpstreamError while the upstream is unreachable."""
        probe = await self._post(["ping"])
        self.info.dimension = int(probe.vectors.shape[1])
        log.info("upstream %s serves %s (dim %s)", self.url, self.upstream_model, self.info.dimension)

    async def embed(self, inputs: list[EmbedInput], input_type: InputType) -> Embeddings:
        if any(item.is_image for item in inputs):
            raise BadRequest("the upstream engine embeds text only; it cannot embed images")
        prompt = self.prompts[input_type]
        texts = [prompt + (item.text or "") for item in inputs]
        size = self.settings.max_batch_size
        parts = await asyncio.gather(*(self._post(texts[i : i + size]) for i in range(0, len(texts), size)))
        return Embeddings(np.concatenate([p.vectors for p in parts]), sum(p.tokens for p in parts))

    async def _post(self, texts: list[str]) -> Embeddings:
        payload: dict[str, Any] = {"input": texts, "encoding_format": "float"}
        if self.upstream_model:
            payload["model"] = self.upstream_model
        body = await self.upstream.post_json("/embeddings", payload)
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
            tokens = int((body.get("usage") or {}).get("prompt_tokens") or 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"{self.upstream.label} answered in an unexpected shape") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise UpstreamError(f"{self.upstream.label} returned {len(vectors)} vectors for {len(texts)} inputs")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return Embeddings(vectors / np.maximum(norms, 1e-12), tokens)

    async def aclose(self) -> None:
        await self.upstream.aclose()
