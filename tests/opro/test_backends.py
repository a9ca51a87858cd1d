"""The other backends: Ollama's native API (lingxi llm serves it under /ollama) and the Ollama
embedding fallback (a local server speaking Ollama's /api/embed, backed by the real MiniLM)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import free_port, respond
from tests.opro.conftest import data, serve, settings_for

SMOL = "smollm2:135m"


@pytest.fixture
def ollama_embed(embedding_service: str) -> Iterator[tuple[str, list[dict]]]:
    """An Ollama-shaped ``POST /api/embed`` whose vectors come from the real embedding service."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(request)
            texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
            rows = httpx.post(f"{embedding_service}/v1/embeddings", json={"input": texts}, timeout=60).json()["data"]
            body = {"model": request["model"], "embeddings": [row["embedding"] for row in rows]}
            respond(self, 200 if self.path == "/api/embed" else 404, body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_ollama_backend_lists_models_generates_and_answers(
    llm_service: str, embedding_service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = settings_for(
        llm_service,
        embedding_service,
        tmp_path_factory.mktemp("ollama"),
        llm_backend="ollama",
        ollama_url=f"{llm_service}/ollama",
    )
    with serve(settings) as running, running.client() as http:
        assert data(http.get("/models"))["models"] == [SMOL]
        body = data(http.post("/answer", json={"query": "Name a fruit"}))
        assert isinstance(body["answer"], str) and 1 <= len(body["candidates"]) <= 5


def test_embeddings_fall_back_to_ollama_when_the_embedding_service_is_down(
    llm_service: str, ollama_embed: tuple[str, list[dict]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ollama_url, seen = ollama_embed
    dead = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(
        llm_service, dead, tmp_path_factory.mktemp("fallback"), ollama_url=ollama_url, candidate_max_tokens=32
    )
    with serve(settings) as running, running.client() as http:
        assert 1 <= len(data(http.post("/query", json={"query": "Name a fruit"}))["candidates"]) <= 5
    assert seen and seen[0]["model"] == settings.ollama_embedding_model
