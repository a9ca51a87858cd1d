"""``upstream``: forwarding to an OpenAI-compatible /v1/embeddings. The upstream here is a real one:
lingxi's own embedding service on the real MiniLM, over HTTP."""

import numpy as np
import pytest

from embedding.config import Engine, Settings
from tests.conftest import free_port, wait_for_health


def upstream_settings(minilm, **overrides):
    values = {
        "engine": Engine.upstream,
        "upstream_url": f"{minilm.url}/v1",
        "upstream_model": "all-MiniLM-L6-v2",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="module")
def forwarding(serve, minilm):
    settings = upstream_settings(
        minilm,
        model_name="remote-minilm",
        model_aliases=["Qwen3-Embedding-4B"],
        query_prompt="query: ",
        dimension=64,
        max_batch_size=2,
    )
    return serve(settings)


def minilm_vectors(minilm, texts, dimensions=64):
    body = minilm.http.post("/v1/embeddings", json={"input": texts, "dimensions": dimensions}).json()
    return np.array([row["embedding"] for row in body["data"]])


def test_upstream_health_reports_the_upstream_and_the_configured_dimension(forwarding, minilm):
    body = forwarding.http.get("/health").json()
    assert body["status"] == "ok" and body["engine"] == "upstream"
    assert body["model"] == "remote-minilm" and body["model_path"] == f"{minilm.url}/v1"
    assert body["embedding_dimension"] == 64


def test_upstream_vectors_match_the_upstream_models_truncated_to_the_configured_dimension(forwarding, minilm):
    texts = ["hello world", "python programming", "learn python", "the weather is nice today", "five"]
    body = forwarding.http.post("/v1/embeddings", json={"model": "remote-minilm", "input": texts}).json()
    vectors = np.array([row["embedding"] for row in body["data"]])
    assert vectors.shape == (5, 64)  # sent to the upstream in pieces of 2, reassembled in order
    assert np.allclose(vectors, minilm_vectors(minilm, texts), atol=1e-5)
    assert body["usage"]["prompt_tokens"] > 0


def test_upstream_queries_get_the_configured_query_prompt(forwarding, minilm):
    body = forwarding.http.post("/v1/embeddings", json={"input": "python", "input_type": "query"}).json()
    assert np.allclose(body["data"][0]["embedding"], minilm_vectors(minilm, ["query: python"])[0], atol=1e-5)


def test_upstream_serves_the_seed_routes_under_its_name_and_aliases_and_cosine_rerank(forwarding):
    assert forwarding.http.get("/remote-minilm/hello").json()["dim"] == 64
    alias = forwarding.http.post("/Qwen3-Embedding-4B", json={"texts": ["hello"]}).json()
    assert alias["model"] == "Qwen3-Embedding-4B" and alias["dim"] == 64
    assert [m["id"] for m in forwarding.http.get("/v1/models").json()["data"]] == [
        "remote-minilm",
        "Qwen3-Embedding-4B",
    ]
    candidates = ["python tutorial", "java guide", "python flask"]
    body = forwarding.http.post("/rerank", json={"query": "python", "candidates": candidates}).json()
    assert body["method"] == "cosine" and body["results"][-1]["text"] == "java guide"


def test_upstream_refuses_images(forwarding):
    response = forwarding.http.post("/v1/embeddings", json={"input": {"type": "image", "data": "aGVsbG8="}})
    assert response.status_code == 400 and "text only" in response.json()["error"]["message"]


def test_unreachable_upstream_is_an_error_in_health_and_a_503(serve):
    port = free_port()  # nothing listens there
    settings = Settings(_env_file=None, engine=Engine.upstream, upstream_url=f"http://127.0.0.1:{port}/v1")
    down = serve(settings, wait=False)
    body = wait_for_health(down.http, settled=True).json()
    assert body["status"] == "error" and "unreachable" in body["detail"] and "retrying" in body["detail"]
    response = down.http.post("/v1/embeddings", json={"input": "hello"})
    assert response.status_code == 503 and "unreachable" in response.json()["error"]["message"]


def test_upstream_that_refuses_the_model_says_why_in_health(serve, minilm):
    wrong = serve(upstream_settings(minilm, upstream_model="no-such-model"))
    body = wrong.http.get("/health").json()
    assert body["status"] == "error" and "no-such-model" in body["detail"]


def test_upstream_without_a_url_is_not_configured(serve):
    idle = serve(Settings(_env_file=None, engine=Engine.upstream))
    response = idle.http.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "not_configured" and "EMBEDDING_UPSTREAM_URL" in response.json()["detail"]
    assert idle.http.post("/v1/embeddings", json={"input": "hi"}).status_code == 503


def test_dimension_larger_than_the_models_is_an_error_in_health(serve, minilm):
    wrong = serve(upstream_settings(minilm, dimension=1000))
    body = wrong.http.get("/health").json()
    assert body["status"] == "error" and "EMBEDDING_DIMENSION=1000" in body["detail"] and "384" in body["detail"]
