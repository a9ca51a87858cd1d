"""The seed API on the embedded all-MiniLM-L6-v2: the user's curl scripts, field for field."""

import math

import numpy as np

MODEL = "all-MiniLM-L6-v2"


def similarity(minilm, a, b):
    response = minilm.http.post("/similarity", json={"a": a, "b": b})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"similarity"}
    return response.json()["similarity"]


def test_similarity_ranks_related_texts_above_unrelated_ones(minilm):
    related = similarity(minilm, "python programming", "learn python")
    unrelated = similarity(minilm, "python programming", "the weather is nice today")
    assert related > unrelated + 0.3
    assert math.isclose(similarity(minilm, "same text", "same text"), 1.0, abs_tol=1e-5)


def test_get_one_text_returns_a_unit_vector_of_the_models_dimension(minilm):
    response = minilm.http.get(f"/{MODEL}/hello%20world")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "embedding", "dim"}
    assert body["model"] == MODEL and body["dim"] == 384 == len(body["embedding"])
    assert math.isclose(float(np.linalg.norm(body["embedding"])), 1.0, abs_tol=1e-4)


def test_get_text_may_contain_slashes_and_chinese(minilm):
    response = minilm.http.get(f"/{MODEL}/a/b c/你好")
    assert response.status_code == 200, response.text
    assert response.json()["dim"] == 384


def test_post_texts_returns_one_vector_per_text_matching_the_get_route(minilm):
    response = minilm.http.post(f"/{MODEL}", json={"texts": ["hello world", "python语言"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "embeddings", "dim"}
    assert body["dim"] == 384 and [len(v) for v in body["embeddings"]] == [384, 384]
    single = minilm.http.get(f"/{MODEL}/hello%20world").json()["embedding"]
    assert np.allclose(body["embeddings"][0], single, atol=1e-5)
    assert not np.allclose(body["embeddings"][0], body["embeddings"][1], atol=1e-2)


def test_rerank_puts_python_candidates_above_the_java_guide(minilm):
    candidates = ["python tutorial", "java guide", "python flask"]
    response = minilm.http.post("/rerank", json={"query": "python", "candidates": candidates})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "cosine"
    results = body["results"]
    assert [set(r) for r in results] == [{"index", "text", "score"}] * 3
    assert results[-1]["text"] == "java guide" and results[-1]["index"] == 1
    assert {r["text"] for r in results[:2]} == {"python tutorial", "python flask"}
    assert all(candidates[r["index"]] == r["text"] for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_rerank_top_n_keeps_the_best(minilm):
    body = {"query": "python", "candidates": ["java guide", "python tutorial", "cooking"], "top_n": 1}
    results = minilm.http.post("/rerank", json=body).json()["results"]
    assert [r["text"] for r in results] == ["python tutorial"]


def test_unknown_model_is_a_404_that_lists_the_served_models(minilm):
    for response in (
        minilm.http.get("/Qwen3-Embedding-4B/hello"),
        minilm.http.post("/Qwen3-Embedding-4B", json={"texts": ["hello"]}),
    ):
        assert response.status_code == 404
        message = response.json()["error"]["message"]
        assert "Qwen3-Embedding-4B" in message and MODEL in message


def test_fixed_routes_are_not_shadowed_by_the_model_catch_alls(minilm):
    assert minilm.http.get("/health").json()["status"] == "ok"
    assert minilm.http.get("/livez").json() == {"status": "alive"}
    assert "lingxi_requests_total" in minilm.http.get("/metrics").text
    assert minilm.http.get("/v1/models").json()["object"] == "list"
    assert minilm.http.get("/openapi.json").status_code == 200
    for response in (
        minilm.http.post("/health", json={"texts": ["x"]}),
        minilm.http.post("/metrics", json={"texts": ["x"]}),
        minilm.http.get("/v1/unknown"),
        minilm.http.get("/health/extra"),
    ):
        assert response.status_code in (404, 405), response.text
        assert "error" in response.json()
