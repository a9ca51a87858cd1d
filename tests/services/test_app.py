import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.app import create_app
from services.errors import BadRequest, NotFound, UpstreamTimeout
from services.health import Health, Status
from services.settings import ServiceSettings


class Echo(BaseModel):
    text: str
    times: int = 1


class Switch:
    """A readiness that a test can flip."""

    def __init__(self) -> None:
        self.status = Status.loading

    def __call__(self) -> Health:
        detail = None if self.status is Status.ok else "model is loading"
        return Health(self.status, detail, {"model": "tiny"})


def make_app(**settings):
    readiness = Switch()
    app = create_app(ServiceSettings(**settings), name="demo", health=readiness)

    @app.post("/echo")
    async def echo(body: Echo) -> dict:
        return {"text": body.text * body.times}

    @app.get("/fail/{kind}")
    async def fail(kind: str) -> dict:
        if kind == "bad":
            raise BadRequest("text must not be empty")
        if kind == "missing":
            raise NotFound("model 'x' is not served; served: tiny")
        if kind == "timeout":
            raise UpstreamTimeout("upstream timed out")
        raise RuntimeError("secret internals /etc/passwd")

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(0.3)
        return {"ok": True}

    return app, readiness


@pytest.fixture
def client():
    app, readiness = make_app()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.readiness = readiness
        yield test_client


def test_domain_errors_render_as_json_with_their_status(client):
    for kind, status, code in [("bad", 400, None), ("missing", 404, "not_found"), ("timeout", 504, "upstream_timeout")]:
        response = client.get(f"/fail/{kind}")
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code and error["param"] is None  # OpenAI's: a string naming the error, or null
        assert error["message"]


def test_unexpected_errors_are_500_without_internals(client):
    response = client.get("/fail/crash")
    assert response.status_code == 500
    assert "passwd" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in response.json()["error"]["message"]


def test_invalid_json_is_400_and_missing_fields_are_422(client):
    bad_json = client.post("/echo", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert "JSON" in bad_json.json()["error"]["message"]
    missing = client.post("/echo", json={"times": 2})
    assert missing.status_code == 422
    assert "text" in missing.json()["error"]["message"]


def test_unknown_routes_are_404_json(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no route GET /no/such/route"


def test_health_flips_from_loading_to_ok(client):
    loading = client.get("/health")
    assert loading.status_code == 503
    assert loading.json() == {"model": "tiny", "status": "loading", "detail": "model is loading"}
    client.readiness.status = Status.ok
    ready = client.get("/health")
    assert ready.status_code == 200
    assert ready.json() == {"model": "tiny", "status": "ok"}
    assert client.get("/livez").status_code == 200


def test_request_ids_are_echoed_or_made(client):
    assert client.get("/livez", headers={"X-Request-ID": "abc123"}).headers["x-request-id"] == "abc123"
    assert len(client.get("/livez").headers["x-request-id"]) >= 8


def test_metrics_count_requests_by_route(client):
    client.post("/echo", json={"text": "a"})
    client.get("/fail/bad")
    text = client.get("/metrics").text
    assert 'lingxi_requests_total{method="POST",route="/echo",service="demo",status="200"} 1.0' in text
    assert 'route="/fail/{kind}",service="demo",status="400"' in text
    assert "lingxi_request_duration_seconds_bucket" in text
    assert "lingxi_requests_in_flight" in text


def test_auth_off_lets_everything_through(client):
    assert client.post("/echo", json={"text": "a"}).status_code == 200


def test_auth_on_requires_the_bearer_key_except_for_health():
    app, _ = make_app(api_key="sk-test")
    with TestClient(app) as client:
        assert client.post("/echo", json={"text": "a"}).status_code == 401
        wrong = client.post("/echo", json={"text": "a"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "authentication_error"
        ok = client.post("/echo", json={"text": "a"}, headers={"Authorization": "Bearer sk-test"})
        assert ok.status_code == 200
        assert client.get("/health").status_code == 503  # public, answers readiness
        assert client.get("/livez").status_code == 200
        assert client.get("/metrics").status_code == 401


def test_request_body_cap_is_413():
    app, _ = make_app(max_request_bytes=100)
    with TestClient(app) as client:
        response = client.post("/echo", json={"text": "x" * 500})
        assert response.status_code == 413
        assert "100 bytes" in response.json()["error"]["message"]


def test_a_body_over_the_cap_without_a_length_is_413_even_where_fastapi_parses_it():
    """FastAPI takes any error while reading a JSON body for a malformed body (400); the cap's is a 413."""
    app, _ = make_app(max_request_bytes=100)

    def chunks():
        yield b'{"text": "'
        for _ in range(20):
            yield "长文本".encode()
        yield b'"}'

    with TestClient(app) as client:
        response = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"] == {
            "message": "request body is larger than 100 bytes",
            "type": "payload_too_large",
            "param": None,
            "code": "request_too_large",
        }
        assert response.headers["x-request-id"]
        assert client.post("/echo", json={"text": "短"}).json() == {"text": "短"}


def test_requests_beyond_the_queue_get_429():
    app, _ = make_app(max_concurrency=1, max_queue=1)

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.get("/slow") for _ in range(4)))

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses.count(200) == 2
    assert statuses.count(429) == 2


def test_validation_errors_name_fields_called_like_a_location():
    from fastapi.exceptions import RequestValidationError

    from services.app import describe_validation_error

    exc = RequestValidationError([{"type": "missing", "loc": ("body", "query"), "msg": "Field required"}])
    assert describe_validation_error(exc) == (422, "query: Field required")
