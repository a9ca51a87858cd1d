"""asr fixtures: the real embedded Whisper base, loaded once per session and shared by every app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asr.app import create_app
from asr.config import Settings
from asr.engines.whisper import WhisperEngine
from services.speaker_encoder import ResemblyzerEncoder
from tests.asr.speech import sox, speak
from tests.conftest import serve_app, wait_for_health

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
        wait_for_health(client)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@dataclass
class Server:
    """The asr app served by uvicorn (WebSockets too) on 127.0.0.1."""

    url: str


@contextmanager
def served(app: FastAPI) -> Iterator[Server]:
    with serve_app(app, ws="websockets-sansio") as url, httpx.Client(base_url=url, timeout=5) as http:
        wait_for_health(http)
        yield Server(url)


@pytest.fixture(scope="session")
def server(whisper_engine: WhisperEngine, model_cache: Path, speaker_encoder: ResemblyzerEncoder) -> Iterator[Server]:
    """The asr app served by uvicorn on 127.0.0.1 (for the openai client, WebSockets, upstream tests)."""
    app = create_app(Settings(model_cache_dir=model_cache), engine=whisper_engine, speaker_encoder=speaker_encoder)
    with served(app) as running:
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
