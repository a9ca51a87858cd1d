"""What opro needs from its backends: a chat model and an embedder."""

from __future__ import annotations

from typing import Protocol

Message = dict[str, str]

# Models whose names say they are not chat models; /models leaves them out.
NON_CHAT_MARKERS = ("embed", "rerank", "bge-", "minilm", "clip")


def chat_models(names: list[str]) -> list[str]:
    return [name for name in names if not any(marker in name.lower() for marker in NON_CHAT_MARKERS)]


class ChatBackend(Protocol):
    async def models(self) -> list[str]:
        """Every model name the backend serves (unfiltered)."""
        ...

    async def chat(
        self, messages: list[Message], *, model: str | None, max_tokens: int, temperature: float | None = None
    ) -> str:
        """The assistant's reply to ``messages``."""
        ...

    async def aclose(self) -> None: ...


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...

    async def aclose(self) -> None: ...
