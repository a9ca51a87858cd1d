"""websearch fixtures: pages served from a local HTTP server, a real PostgreSQL, embedded Qdrant and
the real embedding service (its embedded default)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from tests.conftest import world_readable_tmpdir
from websearch.app import create_app
from websearch.config import Settings


def article(title: str, paragraphs: list[str], lang: str = "en", published: str | None = None) -> str:
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>{meta}</head>'
        f'<body><nav><a href="/">Home</a></nav><article><h1>{title}</h1>{body}</article>'
        "<footer>(c) 2024 Example</footer></body></html>"
    )


@dataclass
class PageServer:
    port: int = 0
    pages: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def html(self, path: str, text: str) -> str:
        self.pages[path] = (200, "text/html; charset=utf-8", text.encode())
        return self.url(path)


@pytest.fixture(scope="session")
def page_server() -> Iterator[PageServer]:
    state = PageServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, content_type, body = state.pages.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()


@pytest.fixture(scope="session")
def websearch_settings(local_postgres, embedding_service, page_server) -> Iterator[Settings]:
    qdrant_dir = world_readable_tmpdir("lingxi-qdrant-")
    yield Settings(
        database_url=local_postgres.url,
        qdrant_path=str(qdrant_dir),
        embedding_url=embedding_service,
        allowed_hosts=[page_server.netloc],
        fetch_timeout_s=5,
        fetch_max_bytes=200_000,
        bulk_max_urls=5,
    )
    shutil.rmtree(qdrant_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def websearch(websearch_settings) -> Iterator[TestClient]:
    with TestClient(create_app(websearch_settings)) as client:
        wait_healthy(client)
        yield client


def wait_healthy(client: TestClient, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/health").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"websearch never became healthy: {client.get('/health').json()}")
        time.sleep(0.2)
