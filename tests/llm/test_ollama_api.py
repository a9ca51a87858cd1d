"""Ollama's whole API under /ollama, driven with the ``ollama`` package against the real suite.

Chat goes to the real SmolLM2, embeddings to the real MiniLM embedding service; every body is read
back with the ``ollama`` package's own response types, every error as Ollama's ``{"error": "..."}``.
"""

import math

import httpx
import ollama
import pytest

from tests.llm.conftest import EMBEDDER, SMOL

ENGLISH, CHINESE = "I love programming", "我喜欢编程"
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "天气", "parameters": {"type": "object", "properties": {}}},
}


def client(running) -> ollama.Client:
    return ollama.Client(host=f"{running.url}/ollama")


def norm(vector) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embed_one_text_and_a_list_in_english_and_chinese(suite):
    one = client(suite).embed(model=EMBEDDER, input=CHINESE)
    assert one.model == EMBEDDER and len(one.embeddings) == 1 and len(one.embeddings[0]) == 512
    assert one.prompt_eval_count > 0 and one.total_duration > 0
    many = client(suite).embed(model=EMBEDDER, input=[ENGLISH, CHINESE, "The weather is nice today"])
    assert len(many.embeddings) == 3 and all(abs(norm(v) - 1) < 1e-3 for v in many.embeddings)
    assert many.embeddings[1] == pytest.approx(one.embeddings[0], abs=1e-5)
    assert many.embeddings[0] != many.embeddings[2]
    short = client(suite).embed(model=EMBEDDER, input=ENGLISH, dimensions=64, keep_alive="5m", truncate=True)
    assert len(short.embeddings[0]) == 64
    raw = httpx.post(f"{suite.url}/ollama/api/embed", json={"input": ENGLISH}, timeout=60).json()
    assert ollama.EmbedResponse.model_validate(raw).model == EMBEDDER  # no model named: the embedding default


def test_legacy_embeddings_answer_one_vector_for_a_prompt(suite):
    legacy = client(suite).embeddings(model=EMBEDDER, prompt=CHINESE)
    assert len(legacy.embedding) == 512
    assert list(legacy.embedding) == pytest.approx(client(suite).embed(model=EMBEDDER, input=CHINESE).embeddings[0])
    assert client(suite).embeddings(model=EMBEDDER, prompt="").embedding == []  # Ollama's way to load a model


def test_embed_refuses_bad_input_with_ollamas_error_string(suite):
    cases = [
        ({"model": EMBEDDER, "input": [1, 2]}, 400, "invalid input type"),
        ({"model": EMBEDDER, "input": ENGLISH, "truncate": False}, 400, "truncate"),
        ({"model": SMOL, "input": ENGLISH}, 400, "chat model"),
        ({"model": "nomic-embed-text", "input": ENGLISH}, 404, EMBEDDER),
        ({"model": "nomic-embed-text", "input": []}, 404, EMBEDDER),
        ({"model": EMBEDDER, "input": ENGLISH, "dimensions": -1}, 400, "dimensions"),
    ]
    for body, status, words in cases:
        response = httpx.post(f"{suite.url}/ollama/api/embed", json=body, timeout=60)
        assert response.status_code == status, body
        assert isinstance(response.json()["error"], str) and words in response.json()["error"], response.json()
    with pytest.raises(ollama.ResponseError) as caught:
        client(suite).embed(model="nomic-embed-text", input=CHINESE)
    assert caught.value.status_code == 404 and EMBEDDER in caught.value.error
    assert client(suite).embed(model=EMBEDDER, input=[]).embeddings == []


def test_embed_names_the_setting_when_the_embedding_service_is_down(gateway):
    with pytest.raises(ollama.ResponseError) as caught:
        client(gateway).embed(model=EMBEDDER, input=ENGLISH)
    assert caught.value.status_code == 502 and "LLM_EMBEDDING_URL" in caught.value.error


def test_tags_show_and_ps_list_chat_and_embedding_models(suite, smol):
    listed = client(suite).list()
    assert [model.model for model in listed.models] == [SMOL, EMBEDDER]
    assert ollama.ListResponse.model_validate(httpx.get(f"{suite.url}/ollama/api/tags").json()) == listed
    assert client(suite).show(EMBEDDER).capabilities == ["embedding"]
    assert client(suite).show(SMOL).capabilities == ["completion", "tools"]  # the upstream engine passes tools on
    local = client(smol).show(SMOL)
    assert local.capabilities == ["completion", "tools"] and local.details.family == "llama"  # llamacpp calls tools
    running = client(suite).ps()
    assert [model.model for model in running.models] == [SMOL, EMBEDDER]
    assert running.models[0].expires_at.year > 2100 and running.models[0].size_vram == 0
    assert [model.model for model in client(smol).ps().models] == [SMOL]
    with pytest.raises(ollama.ResponseError) as caught:
        client(suite).show("llama3:8b")
    assert caught.value.status_code == 404 and EMBEDDER in caught.value.error and SMOL in caught.value.error


def test_pull_of_a_served_model_succeeds_as_for_a_present_model(suite):
    assert client(suite).pull(SMOL).status == "success"
    assert client(suite).pull(EMBEDDER).status == "success"
    assert [part.status for part in client(suite).pull(SMOL, stream=True)] == ["success"]
    with pytest.raises(ollama.ResponseError) as caught:
        client(suite).pull("llama3.2")  # Ollama's library is not a source: Hugging Face GGUF repos are
    assert caught.value.status_code == 400 and "hf.co/{owner}/{repo}" in caught.value.error


def test_model_management_verbs_say_models_are_configured(suite):
    refusals = [
        (lambda: client(suite).delete(SMOL), 400, "deletes no models"),
        (lambda: client(suite).delete("llama3.2"), 404, "not found"),
        (lambda: client(suite).copy(SMOL, "my-copy"), 400, "copies no models"),
        (lambda: client(suite).copy("llama3.2", "my-copy"), 404, "not found"),
        (lambda: client(suite).create(model="mine", from_=SMOL, system="你是一个Python专家"), 400, "creates no models"),
        (lambda: client(suite).push(SMOL), 400, "pushes no models"),
    ]
    for call, status, words in refusals:
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        assert caught.value.status_code == status and words in caught.value.error
    assert [model.model for model in client(suite).list().models] == [SMOL, EMBEDDER]  # nothing changed


def test_root_and_version_answer_like_ollama(suite):
    for path in ("/ollama", "/ollama/"):
        assert httpx.get(suite.url + path).text == "Ollama is running"
        assert httpx.head(suite.url + path).status_code == 200
    assert httpx.get(f"{suite.url}/ollama/api/version").json()["version"]
    assert httpx.head(f"{suite.url}/ollama/api/tags").status_code == 200


def test_every_error_under_ollama_is_a_string_and_under_ollama_v1_an_openai_object(suite):
    cases = [
        ("GET", "/ollama/api/nothing", None, 404),
        ("GET", "/ollama/api/chat", None, 405),
        ("POST", "/ollama/api/show", b"{not json", 400),
        ("POST", "/ollama/api/show", b"{}", 400),
        ("POST", "/ollama/api/copy", b'{"source": "x"}', 400),
        ("POST", "/ollama/api/generate", b'{"prompt": "hi", "options": {"temperature": 9}}', 400),
        ("POST", "/ollama/api/pull", b'{"model": 5}', 400),
    ]
    for method, path, body, status in cases:
        response = httpx.request(method, suite.url + path, content=body)
        assert response.status_code == status, path
        assert isinstance(response.json()["error"], str) and response.json()["error"], response.text
    response = httpx.post(f"{suite.url}/ollama/v1/chat/completions", json={"model": "gpt-9", "messages": []})
    assert response.status_code == 422 and response.json()["error"]["message"]
    response = httpx.get(f"{suite.url}/ollama/v1/models/gpt-9")
    assert response.status_code == 404 and SMOL in response.json()["error"]["message"]


def test_tools_through_ollama_chat_come_back_as_ollama_tool_calls(smol):
    answer = client(smol).chat(
        model=SMOL,
        messages=[{"role": "user", "content": "北京今天天气怎么样?"}],
        tools=[TOOL],
        options={"num_predict": 48},
    )
    if answer.message.tool_calls:  # auto: the model chose to call
        (call,) = answer.message.tool_calls
        assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    else:
        assert answer.message.content and not answer.message.content.lstrip().startswith("{")
