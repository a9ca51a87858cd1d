"""JSON lanes: a valid JSON body for a lean route is answered past FastAPI's router and handler;
everything else is answered by FastAPI, byte for byte as a stock route answers it."""

import asyncio
import re
from typing import Annotated

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from llm.schemas import OpenAIChatRequest
from services.app import app_state, create_app
from services.errors import BadRequest
from services.health import Health, Status
from services.json_lane import include_router
from services.settings import ServiceSettings

Greeting = Annotated[str, app_state("greeting")]


def make_app(lanes: bool, settings: ServiceSettings | None = None, **include):
    app = create_app(settings or ServiceSettings(), name="demo", health=lambda: Health(Status.ok))
    app.state.greeting = "你好"
    router = APIRouter()

    @router.post("/v1/chat/completions")
    async def chat(body: OpenAIChatRequest, greeting: Greeting) -> Response:
        if body.model == "refuse":
            raise BadRequest("这个模型不回答 (this model does not answer)")
        text = f"{greeting} {body.messages[-1].content} ({body.model}, stream={body.stream})"
        return Response(text.encode("utf-8", "surrogatepass"), media_type="text/plain; charset=utf-8")

    @router.get("/v1/echo/{word}")
    async def echo(word: str, greeting: Greeting) -> dict:
        return {"echo": f"{greeting} {word}"}

    if lanes:
        include_router(app, router, **include)
    else:
        app.include_router(router, **include)
    return app


def make_client(lanes: bool, **include) -> TestClient:
    return TestClient(make_app(lanes, **include), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def lean():
    return make_client(lanes=True)


@pytest.fixture(scope="module")
def stock():
    return make_client(lanes=False)


@pytest.fixture
def solver_calls(monkeypatch):
    """How many times FastAPI's dependency solver ran (the stock way in)."""
    calls = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*args, **kwargs):
        calls.append(1)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


JSON = {"content-type": "application/json"}
VALID = [
    b'{"model": "m", "messages": [{"role": "user", "content": "hello"}]}',
    '{"model": "qwen", "messages": [{"role": "user", "content": "用一句话介绍杭州"}], "stream": false}'.encode(),
    b'{"messages": [{"role": "user", "content": "\\u4f60\\u597d"}], "temperature": 0.2, "unknown_field": 1}',
]
INVALID = [
    b"",
    b"{",
    b"not json",
    b"[]",
    b"null",
    b'"text"',
    b"{}",
    b'{"messages": "hi"}',
    b'{"messages": [{"role": "user"}], "temperature": "hot"}',
    '{"messages": [{"role": "用户", "content": "你好"}]}'.encode(),
    b'{"messages": [], "max_tokens": -1, "n": "many"}',
    b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes please"}',
    b"\xff\xfe\x00",
]


def answers(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    response = client.post("/v1/chat/completions", content=body, headers=headers)
    return response.status_code, response.headers.get("content-type", ""), response.content


@pytest.mark.parametrize("body", VALID)
def test_a_valid_body_takes_the_lane_and_answers_as_the_stock_route(lean, stock, body, solver_calls):
    lean_answer = answers(lean, body, JSON)
    assert solver_calls == []
    assert lean_answer[0] == 200
    assert lean_answer == answers(stock, body, JSON)
    assert solver_calls == [1]
    assert lean_answer[2].decode().startswith("你好 ")


@pytest.mark.parametrize("body", INVALID)
def test_a_bad_body_gets_fastapis_own_answer(lean, stock, body):
    lean_answer = answers(lean, body, JSON)
    assert lean_answer[0] in (400, 422), lean_answer
    assert lean_answer == answers(stock, body, JSON)


def test_a_body_only_fastapis_parser_takes_is_still_taken(lean, stock):
    body = b'{"messages": [{"role": "user", "content": "\\ud800 \xe4\xbd\xa0"}]}'  # a lone surrogate
    assert answers(lean, body, JSON) == answers(stock, body, JSON)
    assert answers(lean, body, JSON)[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/vnd.api+json; charset=utf-8"},
        {"content-type": "APPLICATION/JSON"},
    ],
)
def test_other_content_types_are_treated_as_fastapi_treats_them(lean, stock, headers):
    body = VALID[1]
    assert answers(lean, body, headers) == answers(stock, body, headers)


def test_errors_raised_by_the_endpoint_reach_the_services_error_handlers(lean, stock):
    body = b'{"model": "refuse", "messages": [{"role": "user", "content": "hi"}]}'
    status, _, content = answers(lean, body, JSON)
    assert status == 400 and "这个模型不回答" in content.decode()
    assert (status, content) == answers(stock, body, JSON)[::2]


def test_routes_of_another_shape_keep_fastapis_handler(lean):
    assert lean.get("/v1/echo/世界").json() == {"echo": "你好 世界"}


def test_dependencies_of_the_including_router_are_never_skipped():
    refused = []

    async def guard() -> None:
        refused.append(1)
        raise BadRequest("the guard says no")

    client = make_client(lanes=True, dependencies=[Depends(guard)])
    status, _, content = answers(client, VALID[0], JSON)
    assert (status, refused) == (400, [1])
    assert b"the guard says no" in content


def test_dependency_overrides_are_honoured():
    client = make_client(lanes=True)
    client.app.dependency_overrides[Greeting.__metadata__[0].dependency] = lambda: "hello"
    assert answers(client, VALID[0], JSON)[2].startswith(b"hello ")


def request_counts(client: TestClient) -> dict[tuple[str, str], float]:
    """{(route, status): count} of POST requests, from the service's /metrics."""
    pattern = r'lingxi_requests_total\{method="POST",route="([^"]*)",service="demo",status="(\d+)"\} (\S+)'
    return {(route, status): float(n) for route, status, n in re.findall(pattern, client.get("/metrics").text)}


def test_the_kernel_counts_a_lane_request_under_the_routes_path_as_for_fastapis_way():
    clients = make_client(lanes=True), make_client(lanes=False)
    for client in clients:
        answers(client, VALID[1], JSON)
        answers(client, b"{", JSON)
    lean_counts, stock_counts = (request_counts(client) for client in clients)
    assert lean_counts == stock_counts
    assert lean_counts[("/v1/chat/completions", "200")] == 1


def test_a_router_included_under_a_prefix_gets_its_lane_there(solver_calls):
    client = make_client(lanes=True, prefix="/ollama")
    response = client.post("/ollama/v1/chat/completions", content=VALID[1], headers=JSON)
    assert response.status_code == 200 and response.text.startswith("你好 用一句话介绍杭州")
    assert solver_calls == []
    assert client.post("/v1/chat/completions", content=VALID[1], headers=JSON).status_code == 404


def test_the_kernel_still_asks_for_the_key_first():
    app = make_app(lanes=True, settings=ServiceSettings(api_key="密钥-key".encode().hex()))
    client = TestClient(app)
    refused = client.post("/v1/chat/completions", content=VALID[1], headers=JSON)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    key = {"authorization": "Bearer " + "密钥-key".encode().hex(), **JSON}
    assert client.post("/v1/chat/completions", content=VALID[1], headers=key).status_code == 200


def test_a_body_over_the_limit_sent_without_a_length_is_refused_as_on_fastapis_way():
    def chunks():
        for _ in range(4):
            yield b'{"messages": [{"role": "user", "content": "' + "长".encode() * 300 + b'"}]}'

    answered = []
    for lanes in (True, False):
        app = make_app(lanes, settings=ServiceSettings(max_request_bytes=1000))
        response = TestClient(app).post("/v1/chat/completions", content=chunks(), headers=JSON)
        answered.append((response.status_code, response.json()))
    assert answered[0] == answered[1]
    assert answered[0][0] == 413 and "larger than 1000 bytes" in answered[0][1]["error"]["message"]


def test_the_services_own_handler_for_an_error_renders_it():
    app = make_app(lanes=True)

    async def shaped(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": f"{request.url.path}: {exc.message}"}, status_code=exc.status_code)

    app.add_exception_handler(BadRequest, shaped)
    body = b'{"model": "refuse", "messages": [{"role": "user", "content": "hi"}]}'
    response = TestClient(app).post("/v1/chat/completions", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json() == {"error": "/v1/chat/completions: 这个模型不回答 (this model does not answer)"}


def test_a_client_gone_before_its_body_is_in_gets_no_answer_and_breaks_nothing():
    app = make_app(lanes=True)
    sent = []
    messages = [{"type": "http.request", "body": b'{"messages": [', "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def call():
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(call())
    assert sent == []
    with TestClient(app) as client:  # the app serves on
        assert answers(client, VALID[0], JSON)[0] == 200


def test_the_hot_json_routes_of_llm_and_embedding_are_on_lanes():
    from embedding.app import create_app as create_embedding_app
    from embedding.config import Settings as EmbeddingSettings
    from llm.app import create_app as create_llm_app
    from llm.config import Settings as LlmSettings

    llm = create_llm_app(LlmSettings(engine="openai", upstream_url="http://127.0.0.1:9/v1", upstream_model="m"))
    embedding = create_embedding_app(EmbeddingSettings())
    assert {("POST", "/v1/chat/completions"), ("POST", "/ollama/v1/chat/completions")} <= set(llm.state.json_lanes)
    assert ("POST", "/v1/embeddings") in embedding.state.json_lanes
