"""The official openai SDK, the ollama client and lingxi's own LLMClient against a running server."""

import asyncio

import httpx
import ollama
import openai
import pytest

from services.clients import LLMClient
from tests.llm.conftest import SMOL

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def test_openai_sdk_chat_completion(smol):
    client = openai.OpenAI(base_url=f"{smol.url}/v1", api_key="unused")
    completion = client.chat.completions.create(model=SMOL, messages=FRANCE, temperature=0)
    assert "Paris" in completion.choices[0].message.content
    assert completion.model == SMOL and completion.usage.completion_tokens > 0


def test_openai_sdk_streams_chunks(smol):
    client = openai.OpenAI(base_url=f"{smol.url}/v1", api_key="unused")
    stream = client.chat.completions.create(model=SMOL, messages=FRANCE, stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "Paris" in text
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_sdk_lists_models_and_reports_unknown_ones(smol):
    client = openai.OpenAI(base_url=f"{smol.url}/v1", api_key="unused")
    assert [model.id for model in client.models.list()] == [SMOL]
    with pytest.raises(openai.NotFoundError, match=SMOL):
        client.chat.completions.create(model="gpt-9", messages=FRANCE)


def test_ollama_client_chat_generate_and_stream(smol):
    client = ollama.Client(host=f"{smol.url}/ollama")
    answer = client.chat(model=SMOL, messages=FRANCE, options={"temperature": 0})
    assert "Paris" in answer.message.content and answer.done and answer.eval_count > 0
    parts = list(client.chat(model=SMOL, messages=FRANCE, stream=True))
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert "Paris" in "".join(part.message.content for part in parts)
    generated = client.generate(model=SMOL, prompt="What is the capital of France?")
    assert "Paris" in generated.response


def test_ollama_client_lists_and_shows_models_and_reports_unknown_ones(smol):
    client = ollama.Client(host=f"{smol.url}/ollama")
    listed = client.list()
    assert [model.model for model in listed.models] == [SMOL]
    assert listed.models[0].details.quantization_level == "Q4_1"
    shown = client.show(SMOL)
    assert shown.details.family == "llama" and "im_start" in shown.template
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nope", messages=FRANCE)
    assert caught.value.status_code == 404 and SMOL in caught.value.error
    assert httpx.get(f"{smol.url}/ollama/api/version").json()["version"]


def test_ollama_api_rejects_bad_bodies_in_ollamas_error_shape(smol):
    response = httpx.post(f"{smol.url}/ollama/api/chat", content=b"nope")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = httpx.post(f"{smol.url}/ollama/api/chat", json={"messages": [{"role": "x", "content": "hi"}]})
    assert response.status_code == 400 and "role" in response.json()["error"]  # Ollama answers a bad body 400


def test_lingxi_llm_client_used_by_opro_and_websearch(smol):
    async def go():
        client = LLMClient(f"{smol.url}/v1")
        try:
            return await client.chat(FRANCE, temperature=0), await client.models()
        finally:
            await client.aclose()

    answer, models = asyncio.run(go())
    assert "Paris" in answer and models == [SMOL]
