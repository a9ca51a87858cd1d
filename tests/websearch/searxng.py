"""A local server speaking SearXNG's JSON API (``GET /search?q=…&format=json``), fields as SearXNG's
``searx/webutils.py:get_json_response`` writes them; 403 for a format its settings do not list, as
``searx/webapp.py`` answers."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from tests.conftest import LocalServer, respond


def searxng_result(url: str, title: str, content: str, position: int, published: str | None = None) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "url": url,
        "title": title,
        "content": content,
        "engine": "bing",
        "parsed_url": [parts.scheme, parts.netloc, parts.path, "", parts.query, parts.fragment],
        "template": "default.html",
        "engines": ["bing", "duckduckgo"],
        "positions": [position, position],
        "score": 2.0 / position,
        "category": "general",
        "publishedDate": published,
        "thumbnail": None,
        "img_src": None,
    }


@dataclass
class FakeSearxng:
    server: LocalServer
    formats: tuple[str, ...] = ("html", "json")
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # query → results, best first
    unresponsive: list[list[str]] = field(default_factory=list)
    asked: list[dict[str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.routes["/search"] = self.handle

    @property
    def url(self) -> str:
        return self.server.url("").rstrip("/")

    def answer(self, query: str, results: list[tuple[str, str, str]], published: str | None = None) -> None:
        """Results for ``query``: (url, title, content) each, best first."""
        self.answers[query] = [searxng_result(u, t, c, i + 1, published) for i, (u, t, c) in enumerate(results)]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        params = parse_qs(urlsplit(handler.path).query)
        self.asked.append(params)
        output = params.get("format", ["html"])[0]
        if output not in self.formats:
            respond(handler, 403, b"<html><body>Forbidden</body></html>", "text/html")
            return
        query = params.get("q", [""])[0]
        results = self.answers.get(query, [])
        body = {
            "query": query,
            "number_of_results": len(results),
            "results": results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": self.unresponsive,
        }
        respond(handler, 200, json.dumps(body).encode(), "application/json")


def fresh_database(local_postgres: Any) -> str:
    """A new, empty database in the test cluster; its URL."""
    name = f"ws_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(local_postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return local_postgres.url.rsplit("/", 1)[0] + f"/{name}"
