"""tts fixtures: one espeak app per test session, a real HTTP server for it, espeak recordings."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import waitress
from flask import Flask

from tests.conftest import wait_for_health
from tts.app import create_app
from tts.audio import Audio, read_wav
from tts.config import Engine, Settings


@pytest.fixture(scope="session")
def espeak_app() -> Flask:
    app = create_app(Settings(engine=Engine.espeak, max_text_chars=3000))
    wait_for_health(app.test_client())
    return app


@pytest.fixture
def client(espeak_app: Flask):
    return espeak_app.test_client()


class Served:
    def __init__(self, app: Flask) -> None:
        self.server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="session")
def espeak_server(espeak_app: Flask) -> Iterator[Served]:
    served = Served(espeak_app)
    yield served
    served.close()


def espeak_recording(text: str, *, variant: str, pitch: int, rate: int) -> bytes:
    """A WAV recording made with the espeak-ng binary itself (a stand-in for a user's voice)."""
    command = ["espeak-ng", "--stdout", "-v", f"en-us+{variant}", "-p", str(pitch), "-s", str(rate), text]
    return subprocess.run(command, capture_output=True, check=True).stdout


def wav_audio(data: bytes) -> Audio:
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt ", "not a RIFF/WAVE PCM file"
    return read_wav(data)


def to_16k_float(audio: Audio) -> np.ndarray:
    from tts.audio import resample

    return resample(audio, 16_000).samples.astype(np.float32) / 32768.0
