import asyncio

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.app import create_app
from services.clients import EmbeddingClient, LLMClient
from services.errors import BadRequest, LingxiError, UpstreamError
from services.health import Health, Status
from services.settings import ServiceSettings
from tests.conftest import free_port, serve_app


def sibling_app() -> FastAPI:
    """A stand-in speaking the OpenAI wire format of lingxi's embedding and llm services."""
    app = create_app(ServiceSettings(), name="sibling", health=lambda: Health(Status.ok))

    @app.post("/v1/embeddings")
    async def embeddings(body: dict):
        if not body["input"]:
            raise BadRequest("input must not be empty")
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(body["input"])
        ]
        return {"object": "list", "data": rows[::-1], "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        text = body["messages"][-1]["content"].upper()
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "smol", "object": "model"}]}

    return app


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def sibling():
    with serve_app(sibling_app()) as url:
        yield url


def test_embedding_client_orders_rows_by_index(sibling):
    async def go():
        client = EmbeddingClient(sibling)
        try:
            return await client.embed(["a", "abc"])
        finally:
            await client.aclose()

    assert run(go()) == [[1.0, 1.0], [3.0, 1.0]]


def test_client_maps_sibling_4xx_and_dead_hosts(sibling):
    async def bad_request():
        client = EmbeddingClient(sibling)
        try:
            await client.embed([])
        finally:
            await client.aclose()

    with pytest.raises(LingxiError) as caught:
        run(bad_request())
    assert caught.value.status_code == 400 and "input must not be empty" in caught.value.message

    async def dead():
        client = LLMClient(f"http://127.0.0.1:{free_port()}", retries=1)
        try:
            await client.chat([{"role": "user", "content": "hi"}])
        finally:
            await client.aclose()

    with pytest.raises(UpstreamError, match="unreachable"):
        run(dead())


def test_llm_client_chat_and_models(sibling):
    async def go():
        client = LLMClient(f"{sibling}/v1")
        try:
            return await client.chat([{"role": "user", "content": "hi"}]), await client.models()
        finally:
            await client.aclose()

    assert run(go()) == ("HI", ["smol"])


def test_every_request_carries_the_key_and_no_cookie_an_upstream_set():
    """One client serves every caller of a service: a cookie one answer sets must not ride on the next
    caller's request, while the configured key goes on each."""
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        seen.append(dict(request.headers))
        answer = JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]})
        answer.set_cookie("session", "caller-one")
        return answer

    async def go(url):
        client = LLMClient(f"{url}/v1", api_key="k-123")
        try:
            return [await client.chat([{"role": "user", "content": "你好"}]) for _ in range(2)]
        finally:
            await client.aclose()

    with serve_app(app) as url:
        assert run(go(url)) == ["ok", "ok"]
    assert [headers.get("authorization") for headers in seen] == ["Bearer k-123", "Bearer k-123"]
    assert "cookie" not in seen[1]
