"""engine=upstream: the asr service forwarding to an OpenAI-compatible server.

The upstream here is a real one: this same service on the embedded Whisper, served by uvicorn.
Its failures come from a small local server answering in the OpenAI wire format.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from asr.app import create_app
from asr.config import Settings
from tests.asr.conftest import SENTENCES, Server, served
from tests.asr.speech import word_error_rate
from tests.conftest import free_port, wait_for_health


def upstream_client(url: str, **overrides: object) -> TestClient:
    settings = Settings(engine="upstream", upstream_url=url, **overrides)  # type: ignore[arg-type]
    client = TestClient(create_app(settings))
    client.__enter__()
    wait_for_health(client)
    return client


@pytest.fixture(scope="module")
def failing_upstream() -> Iterator[Server]:
    app = FastAPI()

    @app.post("/v1/audio/transcriptions")
    async def fail() -> JSONResponse:
        return JSONResponse({"error": {"message": "model overloaded", "type": "server_error"}}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    with served(app) as running:
        yield running


def test_upstream_engine_transcribes_through_an_openai_compatible_server(server, sentences_wav):
    client = upstream_client(f"{server.url}/v1")
    try:
        assert client.get("/health").json()["engine"] == "upstream"
        response = client.post("/asr", files={"file": ("s.wav", sentences_wav.read_bytes())}, data={"language": "en"})
        assert response.status_code == 200, response.text
        assert word_error_rate(SENTENCES, response.json()["text"]) <= 0.35, response.json()
    finally:
        client.__exit__(None, None, None)


def test_upstream_failures_become_502(failing_upstream, short_wav):
    client = upstream_client(f"{failing_upstream.url}/v1")
    try:
        response = client.post("/asr", files={"file": ("s.wav", short_wav.read_bytes())})
        assert response.status_code == 502 and "model overloaded" in response.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)


def test_unreachable_upstream_is_a_502_naming_it(short_wav):
    client = upstream_client(f"http://127.0.0.1:{free_port()}/v1")
    try:
        response = client.post("/asr", files={"file": ("s.wav", short_wav.read_bytes())})
        assert response.status_code == 502 and "could not be reached" in response.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)


def test_upstream_engine_without_a_url_reports_not_configured_in_health():
    with TestClient(create_app(Settings(engine="upstream"))) as client:
        body = wait_for_health(client, settled=True).json()
        assert body["status"] == "error" and "ASR_UPSTREAM_URL" in body["detail"]


def test_an_upstream_without_translations_is_a_400_saying_so(failing_upstream, short_wav):
    client = upstream_client(f"{failing_upstream.url}/v1")
    try:
        response = client.post("/v1/audio/translations", files={"file": ("s.wav", short_wav.read_bytes())})
        assert response.status_code == 400 and "does not translate" in response.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)
