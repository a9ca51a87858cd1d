"""The vlm engine Protocol and its typed request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.engine import Engine
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


class VisionEngine(Engine, Protocol):
    extra: dict[str, Any]  # what /health says about the engine (engine, model, ...)

    async def health(self) -> Health:
        """Readiness once started (a remote engine asks its upstream)."""
        ...

    async def describe(self, request: DescribeRequest) -> str:
        """The whole description."""
        ...

    async def stream(self, request: DescribeRequest) -> AsyncIterator[str]:
        """Admit the request (errors raise here, before any byte is sent), then return its text chunks."""
        ...
