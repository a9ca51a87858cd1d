"""asr fixtures: the real embedded Whisper base, loaded once per session and shared by every app."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asr.app import create_app
from asr.config import Settings
from asr.engines.whisper import WhisperEngine
from services.speaker_encoder import ResemblyzerEncoder
from tests.asr.speech import sox, speak
from tests.conftest import free_port

SENTENCES = (
    "The weather is nice today. We will walk to the park after lunch. My brother likes to read books in the evening."
)
SHORT = "I would like a cup of tea. Thank you very much."


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asr-models")


@pytest.fixture(scope="session")
def whisper_engine(model_cache: Path) -> WhisperEngine:
    engine = WhisperEngine(Settings(model_cache_dir=model_cache))
    asyncio.run(engine.start())
    return engine


@pytest.fixture(scope="session")
def speaker_encoder() -> ResemblyzerEncoder:
    """Diarization's encoder, shared by every app; it loads on the first diarize request."""
    return ResemblyzerEncoder()


@pytest.fixture(scope="session")
def make_client(
    whisper_engine: WhisperEngine, model_cache: Path, speaker_encoder: ResemblyzerEncoder
) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a started app (sharing the loaded Whisper) with those settings."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        settings = Settings(model_cache_dir=model_cache, **overrides)  # type: ignore[arg-type]
        client = TestClient(create_app(settings, engine=whisper_engine, speaker_encoder=speaker_encoder))
        client.__enter__()
        wait_ready(client)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def wait_ready(client: TestClient, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.05)


class Server:
    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the asr server did not start"
            time.sleep(0.05)
        while httpx.get(f"{self.url}/health", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the asr engine did not become ready"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(whisper_engine: WhisperEngine, model_cache: Path, speaker_encoder: ResemblyzerEncoder) -> Iterator[Server]:
    """The asr app served by uvicorn on 127.0.0.1 (for the openai client, WebSockets, upstream tests)."""
    app = create_app(Settings(model_cache_dir=model_cache), engine=whisper_engine, speaker_encoder=speaker_encoder)
    with Server(app) as running:
        yield running


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asr-audio")


@pytest.fixture(scope="session")
def sentences_wav(audio_dir: Path) -> Path:
    """Three English sentences with pauses between them, as espeak-ng speaks them (22.05 kHz mono)."""
    return speak(SENTENCES, audio_dir / "sentences.wav")


@pytest.fixture(scope="session")
def short_wav(audio_dir: Path) -> Path:
    return speak(SHORT, audio_dir / "short.wav")


@pytest.fixture(scope="session")
def silence_wav(audio_dir: Path) -> Path:
    return sox(Path("-n"), audio_dir / "silence.wav", "trim", "0", "3", rate=16000, channels=1)
