"""The sibling services the llm speaks for: embedding, asr and tts, each at its own URL with its own key,
and websearch, which finds the sources of answers with citations.

With them one OpenAI base URL (``http://host:7207/v1``) and one Ollama base URL
(``http://host:7207/ollama``) serve embeddings, transcription, speech and web answers as well as chat,
while every service keeps its own port and routes. Each sibling has its own pooled HTTP client. A sibling that is not
configured answers 503, one that is down 502, each naming the service and the setting that points at it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from llm.config import Settings
from services.errors import LingxiError, NotReady, UpstreamError
from services.registry import SERVICES
from services.upstream import map_upstream_errors, raise_for_upstream_status, upstream_client


@dataclass(frozen=True)
class Sibling:
    name: str  # the service's name in the registry: embedding, asr, tts, websearch
    url: str | None  # its base URL, without /v1; None: not configured
    api_key: str | None  # what the llm sends it as Bearer key (the caller's own key is for the llm)

    @property
    def setting(self) -> str:
        return f"LLM_{self.name.upper()}_URL"

    def base_url(self) -> str:
        if not self.url:
            port = SERVICES[self.name].port
            raise NotReady(
                f"the {self.name} service is not configured: set {self.setting} (e.g. http://127.0.0.1:{port})"
            )
        return self.url.rstrip("/")


class Siblings:
    def __init__(self, settings: Settings) -> None:
        self.embedding = Sibling("embedding", settings.embedding_url or None, settings.embedding_api_key)
        self.asr = Sibling("asr", settings.asr_url or None, settings.asr_api_key)
        self.tts = Sibling("tts", settings.tts_url or None, settings.tts_api_key)
        self.websearch = Sibling("websearch", settings.websearch_url or None, settings.websearch_api_key)
        self.models_ttl_s = settings.sibling_models_ttl_s
        self.connect_timeout_s = settings.sibling_connect_timeout_s
        self.clients = {  # one pooled client per configured sibling (its key goes on each request)
            sibling.name: upstream_client(
                sibling.url,
                api_key=sibling.api_key,
                timeout_s=settings.sibling_timeout_s,
                connect_timeout_s=settings.sibling_connect_timeout_s,
                max_connections=256,
            )
            for sibling in (*self.all, self.websearch)
            if sibling.url
        }
        self.model_lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    @property
    def all(self) -> tuple[Sibling, ...]:
        """The siblings that serve models (websearch serves none)."""
        return (self.embedding, self.asr, self.tts)

    def named(self, name: str) -> Sibling:
        return next(sibling for sibling in self.all if sibling.name == name)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def open(
        self,
        sibling: Sibling,
        method: str,
        path: str,
        *,
        timeout: httpx.Timeout | None = None,
        **request: Any,
    ) -> httpx.Response:
        """Send a request and return the response with its body still unread (the caller closes it).

        ``request`` takes httpx's ``headers``, ``params``, ``content`` (an async iterator streams the
        body as it arrives) and ``json``. The sibling's key replaces any Authorization header."""
        base = sibling.base_url()
        http = self.clients[sibling.name]
        headers = {k: v for k, v in (request.pop("headers", None) or {}).items() if k.lower() != "authorization"}
        if timeout is not None:
            request["timeout"] = timeout
        built = http.build_request(method, path, headers=headers, **request)
        with map_upstream_errors(f"the {sibling.name} service at {base} (start it, or set {sibling.setting})"):
            return await http.send(built, stream=True)

    async def fetch(self, sibling: Sibling, method: str, path: str, **request: Any) -> httpx.Response:
        """One request, its answer read whole; the sibling's own error (status and message) is raised as ours."""
        response = await self.open(sibling, method, path, **request)
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the {sibling.name} service broke off its answer ({type(exc).__name__})") from exc
        finally:
            await response.aclose()
        raise_for_upstream_status(response, f"{sibling.name} service")
        return response

    async def call(self, sibling: Sibling, method: str, path: str, **request: Any) -> Any:
        """One JSON request (``fetch``), its answer's JSON."""
        response = await self.fetch(sibling, method, path, **request)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(f"the {sibling.name} service answered with something that is not JSON") from exc

    async def models(self, sibling: Sibling) -> list[dict[str, Any]]:
        """The rows of the sibling's ``GET /v1/models``, kept a few seconds; none when it is off or down."""
        now = time.monotonic()
        kept = self.model_lists.get(sibling.name)
        if kept and now - kept[0] < self.models_ttl_s:
            return kept[1]
        if not sibling.url:
            return []
        quick = httpx.Timeout(10.0, connect=self.connect_timeout_s)
        try:
            body = await self.call(sibling, "GET", "/v1/models", timeout=quick)
            rows = [row for row in body["data"] if isinstance(row, dict) and isinstance(row.get("id"), str)]
        except (LingxiError, KeyError, TypeError):  # down, not serving /v1/models yet, or an odd body: skipped
            rows = []
        self.model_lists[sibling.name] = (now, rows)
        return rows

    async def every_model(self) -> dict[str, list[dict[str, Any]]]:
        """Each sibling's model rows, asked of all of them at once."""
        lists = await asyncio.gather(*(self.models(sibling) for sibling in self.all))
        return {sibling.name: rows for sibling, rows in zip(self.all, lists, strict=True)}
