"""opro against the real llm (SmolLM2) and embedding (MiniLM) services, each started once per session.

``serve`` runs an opro app with uvicorn in a thread on a free port; stopping and starting another app
on the same database is an app restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from opro.app import create_app
from opro.config import Settings
from tests.conftest import serve_app


@dataclass
class Opro:
    url: str
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300, trust_env=False)


@contextmanager
def serve(settings: Settings) -> Iterator[Opro]:
    with serve_app(create_app(settings)) as url:
        yield Opro(url, settings)


def settings_for(llm: str, embedding: str, workdir: Path, **overrides: object) -> Settings:
    """Small token budgets: SmolLM2 on two shared cores is slow, and these tests test the pipeline."""
    values: dict[str, object] = {
        "llm_url": f"{llm}/v1",
        "embedding_url": embedding,
        "data_dir": str(workdir / "data"),
        "feedback_path": str(workdir / "outputs" / "user_feedback.jsonl"),
        "candidate_max_tokens": 64,
        "answer_max_tokens": 8,
        "optimize_instruction_max_tokens": 40,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def opro(llm_service: str, embedding_service: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opro]:
    with serve(settings_for(llm_service, embedding_service, tmp_path_factory.mktemp("opro"))) as running:
        yield running


@pytest.fixture(scope="session")
def client(opro: Opro) -> Iterator[httpx.Client]:
    with opro.client() as http:
        yield http


def data(response: httpx.Response) -> dict:
    """The ``data`` of a successful envelope (and the envelope is checked on the way)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == 0 and body["msg"] == "ok", body
    return body["data"]


def error(response: httpx.Response, status: int) -> str:
    """The ``msg`` of an error envelope with HTTP ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {"code": status, "msg": body["msg"], "data": None}, body
    assert isinstance(body["msg"], str) and body["msg"]
    return body["msg"]
