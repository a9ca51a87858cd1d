"""vlm fixtures: the tiny Qwen2-VL (built once per session), a local OpenAI-protocol vision upstream,
one app per engine configuration, and images in every shape a client may send."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.testclient import TestClient

from tests.conftest import serve_app, wait_for_health
from tests.vlm.tiny_qwen_vl import build_tiny_qwen_vl
from vlm.app import create_app
from vlm.config import Settings

UPSTREAM_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# --- the tiny model and the transformers app ------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_vl_dir(tmp_path_factory):
    return build_tiny_qwen_vl(tmp_path_factory.mktemp("models") / "tiny-qwen2-vl")


@pytest.fixture(scope="session")
def transformers_client(tiny_vl_dir) -> Iterator[TestClient]:
    settings = Settings(engine="transformers", model_path=str(tiny_vl_dir), max_tokens=24, device="cpu")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert wait_for_health(client, settled=True, timeout_s=120).json()["status"] == "ok"
        yield client


# --- a local vision upstream speaking OpenAI's chat completions protocol ---------------------------


@dataclass
class FakeUpstream:
    """What the upstream will answer next; tests set these and read ``received``."""

    url: str = ""
    status: int = 200
    error: str | None = None  # a message sent with a non-200 status
    reply_chunks: list[str] = field(default_factory=lambda: ["这是", "一张", "红色的", "图片。"])
    delay_s: float = 0.0
    break_stream_after: int | None = None  # send an in-band error event after this many chunks
    malformed: bool = False
    received: list[dict] = field(default_factory=list)

    def reset(self) -> None:
        fresh = FakeUpstream(url=self.url)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "url"})


def upstream_app(script: FakeUpstream) -> FastAPI:
    import asyncio
    import json

    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": UPSTREAM_MODEL, "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        script.received.append({"body": body, "authorization": request.headers.get("authorization")})
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.status != 200:
            error = {"error": {"message": script.error or "upstream failed", "type": "BadRequestError"}}
            return JSONResponse(error, status_code=script.status)
        if script.malformed:
            return Response("<html>oops</html>", media_type="text/html")
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(script.reply_chunks)}
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            )

        async def events() -> Any:
            first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
            yield f"data: {json.dumps(first)}\n\n"
            for n, chunk in enumerate(script.reply_chunks):
                if script.break_stream_after is not None and n == script.break_stream_after:
                    yield f"data: {json.dumps({'error': {'message': 'engine crashed'}})}\n\n"
                    return
                event = {"choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": None}]}
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
            yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstream]:
    script = FakeUpstream()
    with serve_app(upstream_app(script)) as url:
        script.url = f"{url}/v1"
        yield script


@pytest.fixture
def upstream(upstream_server) -> Iterator[FakeUpstream]:
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()


def openai_settings(upstream_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "engine": "openai",
        "upstream_url": upstream_url,
        "upstream_model": UPSTREAM_MODEL,
        "upstream_api_key": "sk-upstream",
        "upstream_timeout_s": 1.0,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def openai_client(upstream_server) -> Iterator[TestClient]:
    with TestClient(create_app(openai_settings(upstream_server.url)), raise_server_exceptions=False) as client:
        yield client
