"""Images, on a tiny CLIP-like model built in the test: one space for text and images, every way to send one.

The tiny model's weights are random, so these tests check the loading code, the plumbing, the
shapes and the errors, not the meaning of the vectors.
"""

import base64

import numpy as np
import pytest

from tests.conftest import image_bytes, reply

RED = image_bytes((200, 10, 10), (40, 30))
BLUE = image_bytes((10, 10, 200), (40, 30))


def embed(clip, payload):
    response = clip.http.post("/v1/embeddings", json={"model": "tiny-clip", **payload})
    assert response.status_code == 200, response.text
    return np.array([row["embedding"] for row in response.json()["data"]])


def test_health_reports_an_image_capable_model(clip):
    body = clip.http.get("/health").json()
    assert body["status"] == "ok" and body["supports_images"] is True
    assert body["embedding_dimension"] == 16 and body["model"] == "tiny-clip"
    assert body["rerank_method"] == "cross-encoder"


def test_an_image_arrives_the_same_as_data_url_base64_and_http_url(clip, image_host):
    image_host.routes["/red.png"] = reply(200, RED, "image/png")
    encoded = base64.b64encode(RED).decode()
    vectors = embed(
        clip,
        {
            "input": [
                {"type": "image", "data": f"data:image/png;base64,{encoded}"},
                {"type": "image", "data": encoded},
                {"type": "image", "data": image_host.url("/red.png")},
            ]
        },
    )
    assert vectors.shape == (3, 16)
    assert np.allclose(vectors[0], vectors[1], atol=1e-5) and np.allclose(vectors[0], vectors[2], atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_mixed_text_and_images_keep_their_order(clip):
    encoded = base64.b64encode(BLUE).decode()
    mixed = embed(
        clip,
        {
            "input": [
                "a blue square",
                {"type": "image", "data": encoded},
                {"type": "text", "data": "https://example.com/looks-like-an-image.png"},
            ]
        },
    )
    text_only = embed(clip, {"input": ["a blue square", "https://example.com/looks-like-an-image.png"]})
    image_only = embed(clip, {"input": {"type": "image", "data": encoded}})
    assert np.allclose(mixed[0], text_only[0], atol=1e-5)
    assert np.allclose(mixed[1], image_only[0], atol=1e-5)
    assert np.allclose(mixed[2], text_only[1], atol=1e-5)  # a text that looks like a URL stays a text
    assert not np.allclose(mixed[0], mixed[1], atol=1e-3)


def test_a_large_image_is_downscaled_and_embedded(clip):
    big = image_bytes((0, 128, 0), (1600, 900))
    vectors = embed(clip, {"input": {"type": "image", "data": base64.b64encode(big).decode()}})
    assert vectors.shape == (1, 16)


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ("data:image/png;base64,@@@not-base64@@@", 400, "not valid base64"),
        ("data:image/png,rawbytes", 400, "only base64 data URLs"),
        ("data:image/png;base64", 400, "no ','"),
        ("data:text/plain;base64,aGVsbG8=", 400, "holds text/plain"),
        ("%%% definitely not base64 %%%", 400, "neither an http(s) URL"),
        ("aGVsbG8gd29ybGQ=", 415, "not a recognised image"),
        ("file:///etc/passwd", 400, "only http and https"),
        ("http://10.0.0.1/cat.png", 400, "input[0]: refusing to fetch 10.0.0.1: it resolves to a non-public address"),
        ("", 400, "input[0].data must be"),
    ],
)
def test_bad_image_data_is_a_4xx_that_names_the_problem(clip, data, status, words):
    response = clip.http.post("/v1/embeddings", json={"input": [{"type": "image", "data": data}]})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_private_image_url_is_refused(clip, image_host):
    # the same server the allowlist opens, but reached by another name: not allowed
    response = clip.http.post(
        "/v1/embeddings", json={"input": {"type": "image", "data": f"http://localhost:{image_host.port}/red.png"}}
    )
    assert response.status_code == 400
    assert "non-public address" in response.json()["error"]["message"]


def test_image_url_that_is_not_an_image_is_a_415(clip, image_host):
    image_host.routes["/page.html"] = reply(200, b"<html><body>hello</body></html>")
    response = clip.http.post("/v1/embeddings", json={"input": {"type": "image", "data": image_host.url("/page.html")}})
    assert response.status_code == 415
    assert "not a recognised image" in response.json()["error"]["message"]


def test_oversize_images_are_a_413(clip):
    noisy = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG")  # ~480 kB, over the 200 kB limit
    too_big = base64.b64encode(buffer.getvalue()).decode()
    response = clip.http.post("/v1/embeddings", json={"input": {"type": "image", "data": too_big}})
    assert response.status_code == 413 and "bytes" in response.json()["error"]["message"]
    many_pixels = base64.b64encode(image_bytes(size=(2500, 2000))).decode()  # 5 MP, over the 4 MP limit
    response = clip.http.post("/v1/embeddings", json={"input": {"type": "image", "data": many_pixels}})
    assert response.status_code == 413 and "pixels" in response.json()["error"]["message"]


def test_configured_cross_encoder_reranks_and_says_so(clip):
    candidates = ["python tutorial", "java guide", "python flask"]
    seed = clip.http.post("/rerank", json={"query": "python", "candidates": candidates}).json()
    assert seed["method"] == "cross-encoder"
    assert sorted(r["index"] for r in seed["results"]) == [0, 1, 2]
    scores = [r["score"] for r in seed["results"]]
    assert scores == sorted(scores, reverse=True)
    cohere = clip.http.post("/v1/rerank", json={"query": "python", "documents": candidates, "top_n": 2}).json()
    assert cohere["method"] == "cross-encoder" and len(cohere["results"]) == 2
    assert [r["relevance_score"] for r in cohere["results"]] == pytest.approx(scores[:2], abs=1e-5)
