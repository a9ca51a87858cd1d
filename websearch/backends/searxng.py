"""SearXNG's JSON API: ``GET {base}/search?q=…&format=json&language=…&pageno=1``.

Its answer (``searx/webutils.py:get_json_response``) is ``{"query", "number_of_results", "results": [{"url",
"title", "content", "engine", "engines", "score", "publishedDate", …}], "answers", "corrections", "infoboxes",
"suggestions", "unresponsive_engines": [[engine, error], …]}``. SearXNG answers 403 when ``json`` is not in its
``search.formats`` and 429 when its limiter refuses the caller: both are said in words here.

The backend is the one non-public host websearch calls on purpose, so it is called with the ordinary upstream
client (services.upstream), not the safe fetcher that guards result URLs.
"""

from __future__ import annotations

from typing import Any

from services import fastjson
from services.errors import NotReady, UpstreamError
from services.upstream import error_message, map_upstream_errors, upstream_client
from websearch.backends.base import WebResult


class SearxngBackend:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = f"SearXNG at {self.base_url}"
        self.http = upstream_client(self.base_url, timeout_s=timeout_s, max_connections=20)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def search(self, query: str, *, limit: int, lang: str | None) -> list[WebResult]:
        params = {"q": query, "format": "json", "pageno": "1"}
        if lang:
            params["language"] = lang
        with map_upstream_errors(self.name):
            response = await self.http.get("/search", params=params)
        if response.status_code == 403:
            raise UpstreamError(
                f"{self.name} refused format=json (HTTP 403): its JSON format is off; "
                "add json to search.formats in its settings.yml (formats: [html, json]) and restart it"
            )
        if response.status_code == 429:
            raise NotReady(
                f"{self.name} rate-limited websearch (HTTP 429): turn its limiter off (server.limiter: false) "
                "for an instance that only lingxi calls"
            )
        if response.status_code >= 400:  # always a 502: even its 4xx is no fault of websearch's caller
            raise UpstreamError(f"{self.name} answered HTTP {response.status_code}: {error_message(response)}")
        return self._results(self._json(response.content), limit)

    def _json(self, content: bytes) -> dict[str, Any]:
        try:
            body = fastjson.loads(content)
        except ValueError as exc:
            raise UpstreamError(f"{self.name} answered with something that is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise UpstreamError(f"{self.name} answered without a results list")
        return body

    def _results(self, body: dict[str, Any], limit: int) -> list[WebResult]:
        results: list[WebResult] = []
        seen: set[str] = set()
        for row in body["results"]:
            url = row.get("url") if isinstance(row, dict) else None
            if not isinstance(url, str) or not url or url in seen:
                continue
            seen.add(url)
            engines = row.get("engines") or ([row["engine"]] if row.get("engine") else [])
            results.append(
                WebResult(
                    url=url,
                    title=str(row.get("title") or ""),
                    snippet=str(row.get("content") or ""),
                    published_at=row.get("publishedDate") if isinstance(row.get("publishedDate"), str) else None,
                    engines=tuple(str(e) for e in engines),
                )
            )
            if len(results) == limit:
                break
        if not results and body.get("unresponsive_engines"):
            failures = ", ".join(f"{e[0]} ({e[1]})" for e in body["unresponsive_engines"] if len(e) == 2)
            raise UpstreamError(f"{self.name} found nothing because its engines failed: {failures}")
        return results
