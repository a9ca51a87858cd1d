"""``JsonBodyRoute``: a valid JSON body takes the short way in; everything else is answered by FastAPI,
byte for byte as a stock route answers it."""

from typing import Annotated

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, Response
from fastapi.testclient import TestClient

from llm.schemas import OpenAIChatRequest
from services.app import app_state, create_app
from services.errors import BadRequest
from services.health import Health, Status
from services.json_route import JsonBodyRoute
from services.settings import ServiceSettings

Greeting = Annotated[str, app_state("greeting")]


def make_client(route_class: type[fastapi.routing.APIRoute], **include) -> TestClient:
    app = create_app(ServiceSettings(), name="demo", health=lambda: Health(Status.ok))
    app.state.greeting = "你好"
    router = APIRouter(route_class=route_class)

    @router.post("/v1/chat/completions")
    async def chat(body: OpenAIChatRequest, greeting: Greeting) -> Response:
        if body.model == "refuse":
            raise BadRequest("这个模型不回答 (this model does not answer)")
        text = f"{greeting} {body.messages[-1].content} ({body.model}, stream={body.stream})"
        return Response(text.encode("utf-8", "surrogatepass"), media_type="text/plain; charset=utf-8")

    @router.get("/v1/echo/{word}")
    async def echo(word: str, greeting: Greeting) -> dict:
        return {"echo": f"{greeting} {word}"}

    app.include_router(router, **include)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def lean():
    return make_client(JsonBodyRoute)


@pytest.fixture(scope="module")
def stock():
    return make_client(fastapi.routing.APIRoute)


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
def test_a_valid_body_takes_the_short_way_and_answers_as_the_stock_route(lean, stock, body, solver_calls):
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

    client = make_client(JsonBodyRoute, dependencies=[Depends(guard)])
    status, _, content = answers(client, VALID[0], JSON)
    assert (status, refused) == (400, [1])
    assert b"the guard says no" in content


def test_dependency_overrides_are_honoured():
    client = make_client(JsonBodyRoute)
    client.app.dependency_overrides[Greeting.__metadata__[0].dependency] = lambda: "hello"
    assert answers(client, VALID[0], JSON)[2].startswith(b"hello ")
