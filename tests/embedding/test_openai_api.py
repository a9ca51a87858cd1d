"""OpenAI and Cohere/Jina shapes, checked with the official ``openai`` client where there is one."""

import base64
import math

import numpy as np
import openai
import pytest

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def client(minilm):
    with openai.OpenAI(base_url=f"{minilm.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_openai_client_embeds_one_text(client):
    response = client.embeddings.create(model=MODEL, input="hello world")
    assert response.model == MODEL and response.object == "list"
    assert len(response.data) == 1 and len(response.data[0].embedding) == 384
    assert response.usage.prompt_tokens == response.usage.total_tokens == 4  # [CLS] hello world [SEP]


def test_openai_client_embeds_a_batch_in_order(client, minilm):
    texts = ["hello world", "python语言", "the weather is nice today"]
    response = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [row.index for row in response.data] == [0, 1, 2]
    for text, row in zip(texts, response.data, strict=True):
        alone = minilm.http.post("/v1/embeddings", json={"input": text}).json()["data"][0]["embedding"]
        assert np.allclose(row.embedding, alone, atol=1e-5)


def test_openai_client_default_base64_decodes_to_the_float_vectors(client):
    floats = client.embeddings.create(model=MODEL, input=["hello"], encoding_format="float").data[0].embedding
    decoded = client.embeddings.create(model=MODEL, input=["hello"]).data[0].embedding  # client asks base64
    assert np.allclose(floats, decoded, atol=1e-6)
    raw = client.embeddings.create(model=MODEL, input="hello", encoding_format="base64").data[0].embedding
    assert isinstance(raw, str)
    assert np.allclose(np.frombuffer(base64.b64decode(raw), dtype="<f4"), floats, atol=1e-6)


def test_openai_client_dimensions_truncate_and_renormalise(client):
    full = client.embeddings.create(model=MODEL, input="hello", encoding_format="float").data[0].embedding
    short = client.embeddings.create(model=MODEL, input="hello", dimensions=128, encoding_format="float")
    vector = np.array(short.data[0].embedding)
    assert vector.shape == (128,)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5)
    head = np.array(full[:128])
    assert np.allclose(vector, head / np.linalg.norm(head), atol=1e-5)


def test_openai_client_sees_a_bad_request_for_too_many_dimensions(client):
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=MODEL, input="hello", dimensions=4096)


def test_openai_client_sees_not_found_for_an_unknown_model(client):
    with pytest.raises(openai.NotFoundError, match=MODEL):
        client.embeddings.create(model="text-embedding-3-small", input="hello")


def test_models_lists_the_served_model(client):
    assert [model.id for model in client.models.list()] == [MODEL]


def test_long_input_is_truncated_to_the_model_limit_and_counted(minilm):
    long_text = "word " * 2000
    body = minilm.http.post("/v1/embeddings", json={"input": [long_text, "hi"]}).json()
    assert body["usage"]["prompt_tokens"] == 256 + 3  # MiniLM's limit, then [CLS] hi [SEP]
    assert len(body["data"]) == 2


def test_input_type_query_and_document_both_work(minilm):
    for input_type in ("query", "document", "search_query", "passage"):
        response = minilm.http.post("/v1/embeddings", json={"input": "hello", "input_type": input_type})
        assert response.status_code == 200, response.text


def test_v1_rerank_answers_in_the_cohere_jina_shape(minilm):
    documents = ["python tutorial", {"text": "java guide"}, "python flask"]
    body = {"model": MODEL, "query": "python", "documents": documents, "top_n": 2, "return_documents": True}
    response = minilm.http.post("/v1/rerank", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == MODEL and result["method"] == "cosine"
    assert result["usage"]["total_tokens"] > 0
    assert len(result["results"]) == 2
    assert {r["index"] for r in result["results"]} == {0, 2}
    assert all(set(r) == {"index", "relevance_score", "document"} for r in result["results"])
    assert result["results"][0]["relevance_score"] >= result["results"][1]["relevance_score"]
    assert result["results"][0]["document"]["text"].startswith("python")


def test_v1_rerank_leaves_documents_out_unless_asked(minilm):
    body = {"query": "python", "documents": ["java guide", "python tutorial"]}
    results = minilm.http.post("/v1/rerank", json=body).json()["results"]
    assert [set(r) for r in results] == [{"index", "relevance_score"}] * 2
    assert results[0]["index"] == 1
