"""Open WebUI 0.12 on lingxi, for real: chat through its OpenAI and its Ollama connection, the model
list, RAG embeddings (OpenAI and Ollama engines), speech-to-text and text-to-speech, all through Open
WebUI's own REST API while it talks to the real llm, embedding, asr and tts services.

Opt-in (it installs nothing and takes a few minutes): ``./scripts/test --integration tests/integration``
or ``LINGXI_INTEGRATION=1 pytest tests/integration``. How Open WebUI is installed: tests/integration/open_webui.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.asr.speech import speak
from tests.conftest import running_service
from tests.integration.open_webui import EMBEDDER, needs_open_webui, offline_env, open_webui

CHAT_MODEL = "qwen2.5-coder:0.5b"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
SPOKEN = "The weather is nice today. We will walk to the park after lunch."

pytestmark = needs_open_webui


@pytest.fixture(scope="module")
def lingxi(embedding_service: str) -> Iterator[str]:
    """The llm the way ``lingxi up`` wires it: chat on the default Qwen, siblings behind its one base URL."""
    with running_service("asr") as asr, running_service("tts") as tts:
        siblings = {"LLM_EMBEDDING_URL": embedding_service, "LLM_ASR_URL": asr, "LLM_TTS_URL": tts}
        with running_service("llm", siblings) as llm:
            yield llm


def open_webui_env(lingxi: str, data_dir: Path) -> dict[str, str]:
    """Every setting Open WebUI needs; it reads them on its first start and keeps them in its database.
    The RAG, STT and TTS base URLs must be set one by one: they do not follow OPENAI_API_BASE_URL."""
    v1 = f"{lingxi}/v1"
    return {
        **offline_env(data_dir),
        "OPENAI_API_BASE_URL": v1,
        "OPENAI_API_KEY": "none",
        "OLLAMA_BASE_URL": f"{lingxi}/ollama",
        "RAG_EMBEDDING_ENGINE": "openai",
        "RAG_EMBEDDING_MODEL": EMBEDDER,
        "RAG_OPENAI_API_BASE_URL": v1,
        "RAG_OPENAI_API_KEY": "none",
        "AUDIO_STT_ENGINE": "openai",
        "AUDIO_STT_MODEL": "whisper-1",
        "AUDIO_STT_OPENAI_API_BASE_URL": v1,
        "AUDIO_STT_OPENAI_API_KEY": "none",
        "AUDIO_TTS_ENGINE": "openai",
        "AUDIO_TTS_MODEL": "tts-1",
        "AUDIO_TTS_VOICE": "alloy",  # Open WebUI's default voice: tts maps it onto a style
        "AUDIO_TTS_OPENAI_API_BASE_URL": v1,
        "AUDIO_TTS_OPENAI_API_KEY": "none",
    }


@pytest.fixture(scope="module")
def webui(lingxi: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("open-webui")
    with open_webui(open_webui_env(lingxi, data_dir), data_dir) as client:
        yield client


def test_open_webui_lists_lingxis_models(webui):
    assert {CHAT_MODEL, EMBEDDER} <= {model["id"] for model in webui.get("/api/models").json()["data"]}
    assert CHAT_MODEL in [model["id"] for model in webui.get("/openai/models").json()["data"]]
    assert [model["model"] for model in webui.get("/ollama/api/tags").json()["models"]] == [CHAT_MODEL, EMBEDDER]


def test_open_webui_chats_through_its_openai_and_its_ollama_connection(webui):
    body = {"model": CHAT_MODEL, "messages": FRANCE, "stream": False}
    assert "Paris" in webui.post("/openai/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert "Paris" in webui.post("/ollama/api/chat", json=body).json()["message"]["content"]
    assert "Paris" in webui.post("/api/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    with webui.stream("POST", "/api/chat/completions", json={**body, "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and "Paris" in "".join(lines)


@pytest.mark.parametrize("engine", ["openai", "ollama"])
def test_open_webui_rag_embeds_through_lingxi(webui, lingxi, engine):
    update = {"RAG_EMBEDDING_ENGINE": engine, "RAG_EMBEDDING_MODEL": EMBEDDER}
    if engine == "ollama":
        update["ollama_config"] = {"url": f"{lingxi}/ollama", "key": ""}
    assert webui.post("/api/v1/retrieval/embedding/update", json=update).status_code == 200
    documents = {"paris": "The capital of France is Paris.", "code": "我喜欢编程, I love programming."}
    for key, text in documents.items():
        body = {"name": key, "content": text, "collection_name": f"{engine}-{key}"}
        stored = webui.post("/api/v1/retrieval/process/text", json=body)
        assert stored.status_code == 200, stored.text
    query = {"collection_names": [f"{engine}-paris", f"{engine}-code"], "query": "Which city is France's capital?"}
    found = webui.post("/api/v1/retrieval/query/collection", json={**query, "k": 1})
    assert found.status_code == 200 and "Paris" in found.json()["documents"][0][0], found.text


def test_open_webui_speaks_and_transcribes_through_lingxi(webui, tmp_path):
    voices = webui.get("/api/v1/audio/voices").json()["voices"]
    assert {"id": "alloy", "name": "alloy (style1)"} in voices and {"id": "style2", "name": "style2"} in voices
    assert {"id": "tts-1"} in webui.get("/api/v1/audio/models").json()["models"]
    speech = webui.post("/api/v1/audio/speech", json={"input": SPOKEN})
    assert speech.status_code == 200 and speech.headers["content-type"].startswith("audio/")
    wav = speak(SPOKEN, tmp_path / "weather.wav")
    files = {"file": ("weather.wav", wav.read_bytes(), "audio/wav")}
    text = webui.post("/api/v1/audio/transcriptions", files=files).json()["text"].lower()
    assert "weather" in text and "park" in text
