"""Two real opro processes on one PostgreSQL: a job runs on one replica at a time, and a replica killed
with SIGKILL has its job taken over once its lease expires.

Each replica talks to its own fake LLM (OpenAI's wire format over loopback), so the test can tell
which replica made every call and when.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from services.postgres import LocalPostgres
from tests.conftest import respond, service_process

LEASE_S = 2.0


class FakeLLM:
    """An OpenAI-compatible server whose answers take ``delay_s``; it notes the time of each call."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.calls: list[float] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                respond(self, 200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append(time.monotonic())
                time.sleep(delay_s)
                prompt = body["messages"][-1]["content"]
                if prompt.startswith("I have some texts"):
                    text = f"[Add carefully, try {len(fake.calls)}.]"
                else:
                    a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)", prompt)[0])
                    text = f"The answer is {a + b}."
                message = {"role": "assistant", "content": text}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake"}
                respond(self, 200, {**completion, "choices": [choice]})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def replica(database_url: str, llm: FakeLLM) -> AbstractContextManager[tuple[subprocess.Popen[bytes], str]]:
    env = {"OPRO_DATABASE_URL": database_url, "OPRO_LLM_URL": llm.url, "OPRO_JOB_LEASE_S": str(LEASE_S)}
    return service_process("opro", env, ready_timeout_s=60)


@pytest.fixture
def database(local_postgres: LocalPostgres) -> Iterator[str]:
    """A database of its own, so that no other test's unfinished job is taken over here."""
    name = f"opro_replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(local_postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield local_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(local_postgres.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def job_of(base: str, job_id: str) -> dict[str, Any]:
    body = httpx.get(f"{base}/optimize/{job_id}", timeout=10).json()
    assert body["code"] == 0, body
    return body["data"]


def test_a_killed_replica_s_job_is_taken_over_by_the_other_and_never_run_twice_at_once(database: str) -> None:
    first_llm, second_llm = FakeLLM(), FakeLLM()
    examples = [{"input": f"What is {a} + {a + 1}?", "target": str(2 * a + 1)} for a in range(8)]
    task = {"examples": examples, "scorer": "numeric", "steps": 60, "candidates_per_step": 2, "seed": 3}
    try:
        with replica(database, first_llm) as (first, first_url), replica(database, second_llm) as (_, second_url):
            response = httpx.post(f"{first_url}/optimize", json=task, timeout=30)
            assert response.status_code == 202, response.text
            job_id = response.json()["data"]["job_id"]
            time.sleep(3 * LEASE_S)  # several renewals: the second replica must leave the job alone
            assert first_llm.calls and not second_llm.calls
            steps_before = job_of(second_url, job_id)["progress"]["step"]
            assert steps_before < task["steps"], "the job ended before the kill; make it longer"

            first.send_signal(signal.SIGKILL)
            first.wait()
            killed_at = time.monotonic()
            deadline = killed_at + 120
            while (job := job_of(second_url, job_id))["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job["progress"]
                time.sleep(0.3)
            assert job["status"] == "completed", job["error"]
            assert job["resumed"] == 1
            assert job["progress"]["step"] == task["steps"]
            took_over_after = second_llm.calls[0] - killed_at
            assert 0 < took_over_after <= LEASE_S + LEASE_S / 3 + 2, took_over_after
            assert max(first_llm.calls) < killed_at  # never both at once
    finally:
        first_llm.close()
        second_llm.close()
