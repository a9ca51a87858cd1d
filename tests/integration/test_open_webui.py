"""Open WebUI 0.12 on lingxi, for real: chat through its OpenAI and its Ollama connection, the model
list, RAG embeddings (OpenAI and Ollama engines), speech-to-text and text-to-speech, all through Open
WebUI's own REST API while it talks to the real llm, embedding, asr and tts services.

Opt-in (it installs nothing and takes a few minutes): ``./scripts/test --integration tests/integration``
or ``LINGXI_INTEGRATION=1 pytest tests/integration``. Open WebUI lives in its own venv:
``python3.11 -m venv /tmp/owui-venv && /tmp/owui-venv/bin/pip install open-webui==0.12.4``
(or set ``OPEN_WEBUI_BIN`` to its ``open-webui`` executable).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.asr.speech import speak
from tests.conftest import free_port, running_service, wait_healthy

OPEN_WEBUI = Path(os.environ.get("OPEN_WEBUI_BIN", "/tmp/owui-venv/bin/open-webui"))
CHAT_MODEL, EMBEDDER = "qwen2.5-coder:0.5b", "use-multilingual-v3"
START_TIMEOUT_S = 300  # the first start runs its database migrations: ~90 s on a busy 2-core box
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
SPOKEN = "The weather is nice today. We will walk to the park after lunch."

pytestmark = [
    pytest.mark.skipif(not os.environ.get("LINGXI_INTEGRATION"), reason="opt-in: set LINGXI_INTEGRATION=1"),
    pytest.mark.skipif(not OPEN_WEBUI.exists(), reason=f"Open WebUI is not installed at {OPEN_WEBUI}"),
]


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
        **os.environ,
        "OFFLINE_MODE": "true",
        "WEBUI_AUTH": "False",
        "DATA_DIR": str(data_dir),
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
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


@contextmanager
def open_webui(env: dict[str, str], data_dir: Path) -> Iterator[httpx.Client]:
    """Open WebUI on 127.0.0.1 with ``env``, working in ``data_dir`` (it writes its .webui_secret_key into its
    working directory), signed in (with WEBUI_AUTH=False the sign-in makes the one admin)."""
    port = free_port()
    command = [str(OPEN_WEBUI), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (data_dir / "open-webui.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, f"{base}/health", START_TIMEOUT_S, f"Open WebUI (log: {data_dir / 'open-webui.log'})")
        token = httpx.post(f"{base}/api/v1/auths/signin", json={"email": "", "password": ""}).json()["token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=180) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
