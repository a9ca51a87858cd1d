"""websearch fixtures: pages served from a local HTTP server, a real PostgreSQL, embedded Qdrant and
the real embedding service (its embedded default)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import LocalServer, serve_routes, wait_for_health, world_readable_tmpdir
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


@pytest.fixture(scope="session")
def page_server() -> Iterator[LocalServer]:
    with serve_routes() as server:
        yield server


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
        wait_for_health(client)
        yield client
