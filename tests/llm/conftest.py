"""Real servers for the llm tests.

``smol``: lingxi llm with the embedded llamacpp engine on the real SmolLM2-135M (loaded once per session):
the protocol tests run on it because it answers three times as fast as the default model.
``qwen``: lingxi llm on its embedded default, the real Qwen2.5-Coder-0.5B-Instruct, for what depends on
the model's answers (Chinese, tool calls decided by the model, JSON that ends in time).
``gateway``: a second lingxi llm whose models are served by the ``openai`` and ``ollama`` engines,
pointed at ``smol``'s ``/v1`` and ``/ollama`` APIs (real servers speaking the real wire formats), plus
one model whose upstream is down; its sibling services are down too.
``suite``: a lingxi llm as ``lingxi up`` wires it, chatting through ``smol`` and forwarding to the real
embedding (MiniLM), asr (Whisper base) and tts (espeak-ng) services.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from llm.app import create_app
from llm.config import Settings
from tests.conftest import free_port, running_service, serve_app

SMOL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
EMBEDDER = "use-multilingual-v3"
# not what runs on the default ports
NO_SIBLINGS = {"embedding_url": "", "asr_url": "", "tts_url": "", "websearch_url": ""}
LOAD_TIMEOUT_S = 240


@dataclass
class Running:
    url: str
    app: FastAPI

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)


@contextmanager
def serve(app: FastAPI, ready_timeout_s: float = 30) -> Iterator[Running]:
    """Run ``app`` with uvicorn in a thread on a free port until the block ends."""
    with serve_app(app) as url:
        wait_healthy(url, ready_timeout_s)
        yield Running(url, app)


def wait_healthy(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:  # while the model loads, the loading thread may hold the GIL for seconds on a busy box
            response = httpx.get(f"{url}/health", timeout=10)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.TimeoutException:
            last = "/health timed out"
        assert time.monotonic() < deadline, f"{url} not healthy: {last}"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def smol() -> Iterator[Running]:
    settings = Settings(embedded_model=SMOL, max_tokens=48, local_max_queue=0, local_parallel=8, **NO_SIBLINGS)
    with serve(create_app(settings), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="session")
def qwen() -> Iterator[Running]:
    """The default as a user gets it: no settings but the port (max_tokens 512, 8 sequences)."""
    with serve(create_app(Settings(**NO_SIBLINGS)), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="session")
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="session")
def gateway(smol: Running, dead_url: str) -> Iterator[Running]:
    models = {
        "smol": {"engine": "openai", "upstream_model": SMOL},
        "qwen-alias": {"engine": "openai", "upstream_model": SMOL},
        "smol-native": {"engine": "ollama", "upstream_model": SMOL, "upstream_url": f"{smol.url}/ollama"},
        "down": {"engine": "openai", "upstream_model": "x", "upstream_url": dead_url},
    }
    settings = Settings(
        models=json.dumps(models),
        default_model="smol",
        upstream_url=f"{smol.url}/v1",
        upstream_retries=1,
        **{f"{name}_url": dead_url.removesuffix("/v1") for name in ("embedding", "asr", "tts")},
    )
    with serve(create_app(settings)) as running:
        yield running


@pytest.fixture(scope="session")
def asr_service() -> Iterator[str]:
    with running_service("asr") as base:
        yield base


@pytest.fixture(scope="session")
def tts_service() -> Iterator[str]:
    with running_service("tts") as base:
        yield base


@pytest.fixture(scope="session")
def suite(smol: Running, embedding_service: str, asr_service: str, tts_service: str) -> Iterator[Running]:
    settings = Settings(
        engine="openai",
        upstream_url=f"{smol.url}/v1",
        upstream_model=SMOL,
        embedding_url=embedding_service,
        asr_url=asr_service,
        tts_url=tts_service,
    )
    with serve(create_app(settings)) as running:
        yield running


def ask(question: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": question}], **extra}
