"""Web search backends: what turns a question into result URLs (SearXNG ships; the Protocol is in ``base``)."""

from __future__ import annotations

from services.errors import NotConfigured
from websearch.backends.base import SearchBackend, WebResult
from websearch.backends.searxng import SearxngBackend
from websearch.config import Settings

__all__ = ["SearchBackend", "WebResult", "backend_from", "SearxngBackend"]


class NoBackend:
    """No backend is configured: every web search is a 503 that says what to set."""

    name = "web search backend"

    async def search(self, query: str, *, limit: int, lang: str | None) -> list[WebResult]:
        raise NotConfigured(
            "web search has no backend: set WEBSEARCH_SEARXNG_URL to a SearXNG instance with its JSON format "
            "enabled (docker compose runs one); keyword, semantic and hybrid search over stored pages still work"
        )

    async def aclose(self) -> None:
        return None


def backend_from(settings: Settings) -> SearchBackend:
    if settings.searxng_url:
        return SearxngBackend(settings.searxng_url, timeout_s=settings.searxng_timeout_s)
    return NoBackend()
