"""Every wrong request gets a 4xx JSON error that names the problem; nothing produces a 500."""

import pytest

from services.errors import CODES

MODEL = "all-MiniLM-L6-v2"

BAD_REQUESTS = [
    # (method, path, json body, status, words the message must contain)
    ("POST", f"/{MODEL}", {"texts": []}, 400, "texts is empty"),
    ("POST", f"/{MODEL}", {"texts": ["ok", 3]}, 422, "texts.1"),
    ("POST", f"/{MODEL}", {"texts": ["ok", "  "]}, 400, "texts[1] is an empty string"),
    ("POST", f"/{MODEL}", {"texts": "not a list"}, 422, "texts"),
    ("POST", f"/{MODEL}", {}, 422, "texts"),
    ("POST", f"/{MODEL}", {"texts": ["x" * 40_000]}, 413, "texts[0] is 40000 characters"),
    ("POST", f"/{MODEL}", {"texts": ["x"] * 3000}, 413, "texts has 3000 items"),
    ("POST", "/v1/embeddings", {"input": ""}, 400, "input is an empty string"),
    ("POST", "/v1/embeddings", {"input": []}, 400, "input is empty"),
    ("POST", "/v1/embeddings", {"input": ["a", None]}, 400, "input[1] must be"),
    ("POST", "/v1/embeddings", {"input": [1, 2, 3]}, 400, "token ids"),
    ("POST", "/v1/embeddings", {"input": [[1, 2], [3]]}, 400, "token ids"),
    ("POST", "/v1/embeddings", {"input": 42}, 400, "input must be"),
    ("POST", "/v1/embeddings", {}, 422, "input"),
    ("POST", "/v1/embeddings", {"input": "hi", "encoding_format": "hex"}, 422, "encoding_format"),
    ("POST", "/v1/embeddings", {"input": "hi", "dimensions": 385}, 400, "dimensions"),
    ("POST", "/v1/embeddings", {"input": "hi", "dimensions": 0}, 422, "dimensions"),
    ("POST", "/v1/embeddings", {"input": "hi", "input_type": "sideways"}, 422, "input_type"),
    ("POST", "/v1/embeddings", {"input": {"type": "audio", "data": "x"}}, 400, "input.type"),
    ("POST", "/v1/embeddings", {"input": {"type": "text", "data": ""}}, 400, "input.data is an empty string"),
    ("POST", "/v1/embeddings", {"input": {"type": "image", "data": "aGVsbG8="}}, 400, "text only"),
    ("POST", "/v1/embeddings", {"input": "hi", "model": "nope"}, 404, MODEL),
    ("POST", "/similarity", {"a": "x"}, 422, "b"),
    ("POST", "/similarity", {"a": "", "b": "x"}, 400, "a is an empty string"),
    ("POST", "/similarity", {"a": ["x"], "b": "x"}, 422, "a"),
    ("POST", "/rerank", {"query": "x", "candidates": []}, 400, "candidates is empty"),
    ("POST", "/rerank", {"query": "", "candidates": ["a"]}, 400, "query is an empty string"),
    ("POST", "/rerank", {"query": "x", "candidates": ["a"], "top_n": 0}, 422, "top_n"),
    ("POST", "/v1/rerank", {"query": "x", "documents": [{"title": "no text"}]}, 422, "documents"),
    ("POST", "/v1/rerank", {"query": "x", "documents": []}, 400, "documents is empty"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), BAD_REQUESTS)
def test_bad_request_is_a_4xx_that_names_the_problem(minilm, method, path, body, status, words):
    response = minilm.http.request(method, path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"], error
    assert error["code"] == CODES.get(status)


def test_body_that_is_not_json_is_a_400(minilm):
    response = minilm.http.post("/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_garbage_bytes_never_produce_a_500(minilm):
    for path in ("/v1/embeddings", f"/{MODEL}", "/similarity", "/rerank", "/v1/rerank"):
        for payload in (b"\xff\xfe\x00garbage", b"[]", b"null", b'"a string"', b"{}" * 1000):
            response = minilm.http.post(path, content=payload, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (path, payload[:20], response.text)


@pytest.mark.parametrize(
    ("content", "headers", "words"),
    [
        (b"", {"content-type": "application/json"}, "not valid JSON"),
        (b'{"input": "hi"}', {"content-type": "text/plain"}, "Content-Type: application/json"),
        (b'{"input": "hi"}', {}, "Content-Type: application/json"),
    ],
)
def test_embeddings_body_that_is_empty_or_not_sent_as_json_is_a_400(minilm, content, headers, words):
    response = minilm.http.post("/v1/embeddings", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]["message"]


def test_embeddings_body_sent_as_json_with_a_charset_is_taken(minilm):
    headers = {"content-type": "application/json; charset=utf-8"}
    response = minilm.http.post("/v1/embeddings", content='{"input": "你好"}'.encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == 384
