"""No vision model configured (the default: none exists offline). The service runs and says what to set."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.errors import NotReady
from services.health import Health, Status
from vlm.engines.base import DescribeRequest

HOW_TO_CONFIGURE = (
    "no vision model is configured. Set VLM_ENGINE=openai with VLM_UPSTREAM_URL (e.g. http://127.0.0.1:8001/v1, "
    "a vLLM or SGLang server running a Qwen-VL model) and VLM_UPSTREAM_MODEL, or VLM_ENGINE=transformers with "
    "VLM_MODEL_PATH=/path/to/Qwen2.5-VL-7B-Instruct to run it in-process; see docs/vlm.md"
)


class NotConfiguredEngine:
    def __init__(self, detail: str = HOW_TO_CONFIGURE) -> None:
        self.detail = detail

    async def health(self) -> Health:
        return Health(Status.not_configured, self.detail, {"engine": "none"})

    def unavailable(self) -> str | None:
        return self.detail

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def describe(self, request: DescribeRequest) -> str:
        raise NotReady(self.detail)

    async def stream(self, request: DescribeRequest) -> AsyncIterator[str]:
        raise NotReady(self.detail)
