import pytest

from services.errors import BadRequest
from services.flask_app import create_flask_app
from services.health import Health, Status
from services.settings import ServiceSettings


def make_app(**settings):
    state = {"status": Status.not_configured}
    app = create_flask_app(
        ServiceSettings(**settings), name="demo", health=lambda: Health(state["status"], "set DEMO_MODEL")
    )

    @app.post("/synthesize")
    def synthesize():
        raise BadRequest("text is empty")

    @app.get("/crash")
    def crash():
        raise RuntimeError("secret internals")

    app.testing = False
    return app, state


@pytest.fixture
def client():
    app, state = make_app()
    test_client = app.test_client()
    test_client.state = state
    return test_client


def test_flask_errors_share_the_json_shape(client):
    response = client.post("/synthesize")
    assert response.status_code == 400
    error = {"message": "text is empty", "type": "invalid_request_error", "param": None, "code": None}
    assert response.get_json() == {"error": error}
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_flask_unexpected_errors_hide_internals(client):
    response = client.get("/crash")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)


def test_flask_health_flips(client):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not_configured", "detail": "set DEMO_MODEL"}
    client.state["status"] = Status.ok
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_flask_auth_and_metrics():
    app, _ = make_app(api_key="k")
    client = app.test_client()
    assert client.post("/synthesize").status_code == 401
    assert client.post("/synthesize", headers={"Authorization": "Bearer k"}).status_code == 400
    assert client.get("/health").status_code == 503
    metrics = client.get("/metrics", headers={"Authorization": "Bearer k"}).get_data(as_text=True)
    assert 'route="/synthesize",service="demo",status="400"' in metrics


def test_flask_body_cap_is_413_json():
    app, _ = make_app(max_request_bytes=50)
    response = app.test_client().post("/synthesize", data={"text": "x" * 200})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_too_large"
