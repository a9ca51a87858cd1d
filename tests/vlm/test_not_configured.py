"""With no engine (the default here: no vision model exists offline) the service runs and says what to set."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import image_bytes
from tests.vlm.conftest import data_url
from vlm.app import create_app
from vlm.config import Settings


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(engine="none")), raise_server_exceptions=False) as test_client:
        yield test_client


def test_vlm_health_says_not_configured_and_what_to_set(client):
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_configured"
    for setting in ("VLM_ENGINE=openai", "VLM_UPSTREAM_URL", "VLM_ENGINE=transformers", "VLM_MODEL_PATH"):
        assert setting in body["detail"]


@pytest.mark.parametrize("path", ["/describe_image", "/describe_image_stream"])
def test_vlm_describe_answers_503_with_the_same_guidance(client, path):
    payload = {"text": "描述这幅图", "image_url": data_url(image_bytes())}
    response = client.post(path, json=payload)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "service_unavailable"
    assert error["message"] == client.get("/health").json()["detail"]


def test_vlm_livez_stays_up_without_an_engine(client):
    assert client.get("/livez").json() == {"status": "alive"}


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"engine": "transformers"}, "VLM_MODEL_PATH"),
        ({"engine": "openai", "upstream_model": "m"}, "VLM_UPSTREAM_URL"),
        ({"engine": "openai", "upstream_url": "http://127.0.0.1:1/v1"}, "VLM_UPSTREAM_MODEL"),
    ],
)
def test_vlm_engine_without_its_settings_names_the_missing_one(settings, missing):
    with TestClient(create_app(Settings(**settings)), raise_server_exceptions=False) as test_client:
        health = test_client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "not_configured"
        assert missing in health.json()["detail"]
        response = test_client.post("/describe_image", json={"image_url": data_url(image_bytes())})
        assert response.status_code == 503
        assert missing in response.json()["error"]["message"]
