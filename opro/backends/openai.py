"""An OpenAI-compatible chat backend (lingxi llm by default): ``/chat/completions`` and ``/models``."""

from __future__ import annotations

from typing import Any

from opro.backends.base import Message
from services.clients import ServiceClient
from services.errors import UpstreamError


class OpenAIChat:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.client = ServiceClient(base_url, name="llm", api_key=api_key, timeout_s=timeout_s)

    async def models(self) -> list[str]:
        body = await self.client.get_json("/models")
        try:
            return [str(row["id"]) for row in body["data"]]
        except (KeyError, TypeError) as exc:
            raise UpstreamError("llm answered /models in an unexpected shape") from exc

    async def chat(
        self, messages: list[Message], *, model: str | None, max_tokens: int, temperature: float | None = None
    ) -> str:
        payload: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
        if model:
            payload["model"] = model
        if temperature is not None:
            payload["temperature"] = temperature
        body = await self.client.post_json("/chat/completions", payload)
        try:
            return str(body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise UpstreamError("llm answered /chat/completions in an unexpected shape") from exc

    async def aclose(self) -> None:
        await self.client.aclose()
