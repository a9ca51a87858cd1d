"""The vlm engine Protocol and its typed request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from services.health import Health

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class DescribeRequest:
    prompt: str
    image: Image  # RGB, already limited and downscaled by the route
    max_tokens: int
    temperature: float | None = None  # None: the model's own generation defaults; 0: greedy
    model: str | None = None  # None: the engine's configured model


class VisionEngine(Protocol):
    async def health(self) -> Health:
        """Readiness for /health: ok, loading, not_configured or error (with what to do)."""
        ...

    def unavailable(self) -> str | None:
        """Why requests cannot be served right now (answered 503 before any work), or None."""
        ...

    async def start(self) -> None:
        """Load the model / open connections; called once in the background at start-up."""
        ...

    async def aclose(self) -> None: ...

    async def describe(self, request: DescribeRequest) -> str:
        """The whole description."""
        ...

    async def stream(self, request: DescribeRequest) -> AsyncIterator[str]:
        """Admit the request (errors raise here, before any byte is sent), then return its text chunks."""
        ...
