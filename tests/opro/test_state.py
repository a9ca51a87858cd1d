"""Sessions survive restarts (SQLite and PostgreSQL); the feedback file stays one JSON line per event."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from services.postgres import LocalPostgres
from tests.opro.conftest import Opro, data, serve, settings_for


def restart_keeps_everything(llm: str, embedding: str, workdir, **overrides: object) -> None:
    settings = settings_for(llm, embedding, workdir, candidate_max_tokens=32, **overrides)
    with serve(settings) as first, first.client() as http:
        sid = data(http.post("/query", json={"query": "Plan a weekend trip to Hangzhou"}))["session_id"]
        candidate = data(http.get(f"/session/{sid}"))["candidates"][0]
        data(http.post("/reject", json={"session_id": sid, "candidate": candidate, "reason": "too vague"}))
        before = data(http.get(f"/session/{sid}"))
        listed_before = data(http.get("/sessions"))
    with serve(settings) as second, second.client() as http:
        assert data(http.get(f"/session/{sid}")) == before
        assert data(http.get("/sessions")) == listed_before
        assert before["round"] == 2 and before["rejected"] == [candidate]
        # and the session goes on where it stopped
        assert data(http.post("/query_from_message", json={"session_id": sid}))["round"] == 2


def test_sessions_survive_an_app_restart_on_sqlite(
    llm_service: str, embedding_service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("restart-sqlite")
    restart_keeps_everything(llm_service, embedding_service, workdir)
    assert (workdir / "data" / "opro.sqlite3").exists()


def test_sessions_survive_an_app_restart_on_postgresql(
    llm_service: str, embedding_service: str, local_postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("restart-postgres")
    restart_keeps_everything(llm_service, embedding_service, workdir, database_url=local_postgres.url)
    assert not (workdir / "data" / "opro.sqlite3").exists()


def test_twenty_concurrent_selects_write_twenty_complete_feedback_lines(client: httpx.Client, opro: Opro) -> None:
    sid = data(client.post("/query", json={"query": "Write a haiku about autumn"}))["session_id"]
    choices = [f"Write a haiku about autumn, variant {n}" for n in range(20)]

    async def select_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=opro.url, timeout=600, trust_env=False) as http:
            return await asyncio.gather(
                *(http.post("/select", json={"session_id": sid, "choice": choice}) for choice in choices)
            )

    for response, choice in zip(asyncio.run(select_all()), choices, strict=True):
        assert data(response)["prompt"] == choice
    lines = open(opro.settings.feedback_path, encoding="utf-8").read().splitlines()
    events = [json.loads(line) for line in lines]  # every line is complete JSON
    selects = [event for event in events if event["event"] == "select" and event["session_id"] == sid]
    assert sorted(event["choice"] for event in selects) == sorted(choices)
    assert all(isinstance(event["answer"], str) for event in selects)
    assert len(data(client.get(f"/session/{sid}"))["user_feedback"]) == 20
