"""How the llm forwards to a sibling, seen from a small sibling server speaking HTTP on 127.0.0.1: the
upload and the answer are streamed, not held; the sibling gets its own key and the caller's request id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from llm.app import create_app
from llm.config import Settings
from tests.llm.conftest import Running, serve

CHUNK = b"x" * 65_536


class Sibling:
    """What the sibling saw: headers, bytes, and when the first and last request bytes arrived."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.received = 0
        self.first_byte_at = 0.0
        self.app = FastAPI()
        self.app.post("/v1/embeddings")(self.embeddings)
        self.app.post("/v1/audio/speech")(self.speech)
        self.app.get("/health")(lambda: {"status": "ok"})
        self.app.get("/v1/models")(lambda: {"object": "list", "data": []})  # the llm's chat upstream too

    async def embeddings(self, request: Request) -> dict:
        self.headers = dict(request.headers)
        self.received, self.first_byte_at = 0, 0.0
        async for chunk in request.stream():
            self.first_byte_at = self.first_byte_at or time.monotonic()
            self.received += len(chunk)
        return {"object": "list", "data": [], "model": "m", "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    async def speech(self) -> StreamingResponse:
        async def audio():
            for _ in range(5):
                yield CHUNK
                await asyncio.sleep(0.3)

        return StreamingResponse(audio(), media_type="audio/wav", headers={"x-private": "not passed on"})


@pytest.fixture(scope="module")
def sibling() -> Iterator[tuple[Sibling, Running]]:
    fake = Sibling()
    with serve(fake.app) as running:
        yield fake, running


@pytest.fixture(scope="module")
def llm(sibling) -> Iterator[Running]:
    _, running = sibling
    settings = Settings(
        engine="openai",
        upstream_url=f"{running.url}/v1",
        upstream_model="m",
        api_key="key-of-the-llm",
        max_request_bytes=1_000_000,
        embedding_url=running.url,
        embedding_api_key="key-of-the-sibling",
        tts_url=running.url,
    )
    with serve(create_app(settings)) as served:
        yield served


AUTH = {"authorization": "Bearer key-of-the-llm"}


def slowly(count: int, pause_s: float) -> Iterator[bytes]:
    for _ in range(count):
        time.sleep(pause_s)
        yield CHUNK


def test_an_upload_reaches_the_sibling_while_it_is_still_being_sent(llm, sibling):
    fake, _ = sibling
    started = time.monotonic()
    headers = {**AUTH, "content-type": "application/json", "x-request-id": "trace-me"}
    response = httpx.post(f"{llm.url}/v1/embeddings", content=slowly(8, 0.25), headers=headers, timeout=30)
    finished = time.monotonic()
    assert response.status_code == 200 and fake.received == 8 * len(CHUNK)
    assert fake.first_byte_at - started < (finished - started) / 2  # not gathered first, then sent
    assert fake.headers["authorization"] == "Bearer key-of-the-sibling"  # not the caller's key
    assert fake.headers["x-request-id"] == "trace-me" and response.headers["x-request-id"] == "trace-me"


def test_an_answer_comes_back_as_the_sibling_sends_it(llm):
    started = time.monotonic()
    with httpx.stream("POST", f"{llm.url}/v1/audio/speech", json={"input": "hi"}, headers=AUTH) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
    assert first and len(first) + len(rest) == 5 * len(CHUNK)
    assert first_at < 1.0  # the sibling takes 1.5 s to send it all
    assert response.headers["content-type"] == "audio/wav" and "x-private" not in response.headers


def test_an_upload_over_the_llms_limit_is_refused_while_streaming(llm):
    headers = {**AUTH, "content-type": "application/json"}
    response = httpx.post(f"{llm.url}/v1/embeddings", content=slowly(40, 0), headers=headers, timeout=30)
    assert response.status_code == 413 and "1000000 bytes" in response.json()["error"]["message"]


def test_the_caller_still_needs_the_llms_key(llm):
    response = httpx.post(f"{llm.url}/v1/embeddings", json={"input": "hi"})
    assert response.status_code == 401
