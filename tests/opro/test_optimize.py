"""POST /optimize with the real SmolLM2 as optimizer and scorer, on the shipped arithmetic task."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from opro.store import SessionStore
from services.postgres import LocalPostgres
from tests.opro.conftest import data, error, serve, settings_for

SHIPPED = Path(__file__).parent.parent / "data" / "opro" / "arithmetic.jsonl"
EXAMPLES = [json.loads(line) for line in SHIPPED.read_text().splitlines()]


def short_task(**overrides: Any) -> dict[str, Any]:
    """A few steps on 8 of the shipped examples (4 train, 4 test), with short answers: SmolLM2 on two
    shared cores answers a handful of calls a second."""
    return {
        "examples": EXAMPLES[:8],
        "scorer": "numeric",
        "initial_instruction": "Let's solve the problem.",
        "steps": 2,
        "candidates_per_step": 2,
        "scorer_max_tokens": 16,
        "exemplars_in_prompt": 2,
        "seed": 1,
        **overrides,
    }


def accepted(response: httpx.Response) -> dict:
    """The job of a ``202 Accepted`` envelope."""
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "ok", body
    return body["data"]


def wait_for(http: httpx.Client, job_id: str, done: Callable[[dict], bool], timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = data(http.get(f"/optimize/{job_id}"))
        if done(job):
            return job
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, f"job still at {job['progress']}"
        time.sleep(0.5)


def finished(job: dict) -> bool:
    return job["status"] not in ("queued", "running")


def check_scored_trajectory(job: dict, steps: int, per_step: int) -> None:
    assert [entry["step"] for entry in job["trajectory"]] == list(range(steps + 1))
    for entry in job["trajectory"][1:]:
        assert len(entry["instructions"]) + entry["unparsed"] == per_step
    scores = {}
    for entry in job["trajectory"]:
        for item in entry["instructions"]:
            assert isinstance(item["instruction"], str) and 0.0 <= item["score"] <= 1.0
            scores[item["instruction"]] = item["score"]
        assert entry["best_score"] == max(scores.values())
    assert job["best"]["train_score"] == max(scores.values())
    assert scores[job["best"]["instruction"]] == job["best"]["train_score"]


def test_a_short_run_completes_with_every_instruction_scored(client: httpx.Client) -> None:
    started = accepted(client.post("/optimize", json=short_task(name="arithmetic smoke")))
    assert started["status"] in ("queued", "running")
    assert started["examples"] == {"train": 4, "test": 4}
    assert started["models"] == {
        "optimizer": "smollm2:135m",
        "scorer": "smollm2:135m",
        "judge": "smollm2:135m",
    }

    job = wait_for(client, started["job_id"], finished)
    assert job["status"] == "completed", job["error"]
    assert job["progress"]["step"] == 2 and job["progress"]["phase"] == "done"
    check_scored_trajectory(job, steps=2, per_step=2)
    assert job["trajectory"][0]["instructions"][0]["instruction"] == "Let's solve the problem."

    distinct = job["progress"]["scored_instructions"]
    test_runs = 1 if job["best"]["instruction"] == job["initial"]["instruction"] else 2
    assert job["progress"]["calls"] == {"optimizer": 2 * 2, "scorer": 4 * distinct + 4 * test_runs, "judge": 0}

    assert job["initial"]["instruction"] == "Let's solve the problem."
    for side in ("initial", "best"):
        assert 0.0 <= job[side]["test_score"] <= 1.0
    assert len(job["comparison"]) == 4
    for row in job["comparison"]:
        assert {row["input"], row["target"]} <= {e["input"] for e in EXAMPLES} | {e["target"] for e in EXAMPLES}
        assert isinstance(row["initial_output"], str) and isinstance(row["best_output"], str)
    assert job["best"]["test_score"] == sum(row["best_correct"] for row in job["comparison"]) / 4

    assert "completed" in error(client.post(f"/optimize/{job['job_id']}/resume"), 409)

    listed = data(client.get("/optimize"))["jobs"]
    mine = [row for row in listed if row["job_id"] == job["job_id"]]
    assert mine and mine[0]["status"] == "completed" and mine[0]["name"] == "arithmetic smoke"
    assert mine[0]["best"] == job["best"]


def test_a_job_resumes_after_a_service_restart(
    llm_service: str, embedding_service: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = settings_for(llm_service, embedding_service, tmp_path_factory.mktemp("optimize-restart"))
    with serve(settings) as first, first.client() as http:
        job_id = accepted(http.post("/optimize", json=short_task(seed=2)))["job_id"]
        before = wait_for(http, job_id, lambda job: len(job["trajectory"]) >= 1)  # step 0 scored
    with serve(settings) as second, second.client() as http:
        job = wait_for(http, job_id, finished)
    assert job["status"] == "completed", job["error"]
    assert job["resumed"] == 1
    assert job["trajectory"][0] == before["trajectory"][0]  # kept, not scored again
    check_scored_trajectory(job, steps=2, per_step=2)
    assert job["best"]["test_score"] is not None


def test_cancel_stops_a_running_job(client: httpx.Client) -> None:
    job_id = accepted(client.post("/optimize", json=short_task(steps=100, seed=3)))["job_id"]
    wait_for(client, job_id, lambda job: job["status"] == "running")
    cancelled = data(client.delete(f"/optimize/{job_id}"))
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    time.sleep(2)
    later = data(client.get(f"/optimize/{job_id}"))
    assert later["status"] == "cancelled"
    assert later["progress"] == cancelled["progress"]  # no call made after the cancel
    assert data(client.delete(f"/optimize/{job_id}"))["status"] == "cancelled"
    resumed = accepted(client.post(f"/optimize/{job_id}/resume"))  # goes on where it stopped
    assert resumed["status"] == "queued" and resumed["resumed"] == 1
    assert resumed["trajectory"] == later["trajectory"]
    assert data(client.delete(f"/optimize/{job_id}"))["status"] == "cancelled"
    assert "not found" in error(client.post("/optimize/no-such-job/resume"), 404)
    assert "not found" in error(client.delete("/optimize/no-such-job"), 404)
    assert "not found" in error(client.get("/optimize/no-such-job"), 404)


def test_examples_can_be_uploaded_as_a_file(client: httpx.Client) -> None:
    with SHIPPED.open("rb") as file:
        response = client.post(
            "/optimize",
            files={"file": (SHIPPED.name, file, "application/x-ndjson")},
            data={"scorer": "numeric", "steps": "1", "candidates_per_step": "1", "train_fraction": "0.1"},
        )
    job = accepted(response)
    assert job["examples"] == {"train": 5, "test": len(EXAMPLES) - 5}
    assert job["task"]["steps"] == 1 and job["task"]["scorer"] == "numeric"
    assert data(client.delete(f"/optimize/{job['job_id']}"))["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 422, "examples: Field required"),
        ({"examples": EXAMPLES[:1]}, 422, "examples"),
        ({"examples": EXAMPLES[:4], "scorer": "bleu"}, 422, "scorer"),
        ({"examples": EXAMPLES[:4], "steps": 0}, 422, "steps"),
        ({"examples": EXAMPLES[:4], "candidates_per_step": 1000}, 422, "candidates_per_step"),
        ({"examples": EXAMPLES[:4], "stepz": 3}, 422, "stepz"),
        ({"examples": [{"input": "1+1", "target": "two"}] * 2, "scorer": "numeric"}, 400, "not a number"),
        ({"examples": [{"input": "x", "target": "(unclosed"}] * 2, "scorer": "regex"}, 400, "regular expression"),
        ({"examples": EXAMPLES[:4], "scorer_model": "no-such-model"}, 400, "model not available"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_task_definitions_get_4xx_envelopes_and_start_nothing(
    client: httpx.Client, body: Any, status: int, message: str
) -> None:
    before = len(data(client.get("/optimize"))["jobs"])
    assert message in error(client.post("/optimize", json=body), status)
    assert len(data(client.get("/optimize"))["jobs"]) == before


def test_unreadable_bodies_and_uploads_get_4xx_envelopes(client: httpx.Client) -> None:
    before = len(data(client.get("/optimize"))["jobs"])
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in error(client.post("/optimize", content=b"{oops", headers=headers), 400)
    assert error(client.post("/optimize", content=b"steps=3", headers={"content-type": "text/plain"}), 415)
    bad_csv = {"file": ("task.csv", b"question,answer\n1+1,2\n", "text/csv")}
    assert "input and target" in error(client.post("/optimize", files=bad_csv), 400)
    bad_line = {"file": ("task.jsonl", b'{"input": "1+1", "target": "2"}\n{oops\n', "application/x-ndjson")}
    assert "line 2" in error(client.post("/optimize", files=bad_line), 400)
    assert len(data(client.get("/optimize"))["jobs"]) == before


def test_jobs_are_kept_in_postgresql_beside_the_sessions(local_postgres: LocalPostgres) -> None:
    store = SessionStore.open(local_postgres.url, "unused")
    running, done = f"running-{uuid.uuid4().hex}", f"done-{uuid.uuid4().hex}"
    try:
        job = {"job_id": running, "status": "running", "trajectory": [{"step": 0}], "note": "中文"}
        asyncio.run(store.save_job(job))
        asyncio.run(store.save_job({"job_id": done, "status": "completed"}))
        assert asyncio.run(store.get_job(running)) == job
        unfinished = {row["job_id"] for row in asyncio.run(store.jobs(("queued", "running")))}
        assert running in unfinished and done not in unfinished
        assert {running, done} <= {row["job_id"] for row in asyncio.run(store.jobs())}
    finally:  # an unfinished job here would be resumed by the next opro started on this database
        asyncio.run(store.save_job({"job_id": running, "status": "cancelled"}))
        store.close()
