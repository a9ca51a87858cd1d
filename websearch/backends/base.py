"""The web search backend Protocol: one file per provider (SearXNG ships; Brave, Tavily or a Bing-style API
would be one more file satisfying ``SearchBackend``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WebResult:
    url: str
    title: str
    snippet: str
    published_at: str | None = None  # ISO 8601, as the backend gave it
    engines: tuple[str, ...] = ()


class SearchBackend(Protocol):
    name: str  # how errors name it, e.g. "SearXNG at http://searxng:8080"

    async def search(self, query: str, *, limit: int, lang: str | None) -> list[WebResult]:
        """Up to ``limit`` results, best first. A backend that cannot answer raises lingxi's errors (502/503/504)
        naming itself."""
        ...

    async def aclose(self) -> None: ...
