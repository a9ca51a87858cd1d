"""Benchmark opro: ``.venv/bin/python bench/opro.py`` (``--rounds N``).

Starts the real llm (SmolLM2) and embedding (MiniLM) services and opro on 127.0.0.1, then compares
in one run:
  a candidate round through ``POST /query``  vs  ``CandidateGenerator.generate`` in-process (ceiling),
  ``GET /session/{sid}`` over HTTP           vs  the session store read in-process (ceiling),
  an OPRO job through ``POST /optimize``     vs  ``JobRunner`` in-process (ceiling), per LLM call
                                               (sampling makes runs differ in length; calls normalise).
No peer: nothing else here does what opro does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

from opro.app import build_optimizer, create_app  # noqa: E402
from opro.config import Settings  # noqa: E402
from opro.jobs import JobRunner  # noqa: E402
from opro.tasks import task_from  # noqa: E402
from tests.conftest import free_port, running_service  # noqa: E402

SHIPPED_TASK = ROOT / "tests" / "data" / "opro" / "arithmetic.jsonl"
QUESTIONS = ["How do I keep apples fresh?", "Plan a weekend in Hangzhou", "Explain TCP slow start", "我想买苹果"]


def serve(settings: Settings) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for index in range(repeat):
        started = time.perf_counter()
        fn(index)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4, help="candidate rounds per side")
    parser.add_argument("--reads", type=int, default=300, help="session reads per side")
    parser.add_argument("--jobs", type=int, default=2, help="OPRO jobs per side")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opro-bench-"))
    with running_service("llm") as llm, running_service("embedding") as embedding:
        settings = Settings(
            llm_url=f"{llm}/v1",
            embedding_url=embedding,
            data_dir=str(workdir / "data"),
            feedback_path=str(workdir / "feedback.jsonl"),
            candidate_max_tokens=48,
            answer_max_tokens=8,
            optimize_instruction_max_tokens=40,
        )
        server, base = serve(settings)
        http = httpx.Client(base_url=base, timeout=600, trust_env=False)
        optimizer = build_optimizer(settings)
        loop = asyncio.new_event_loop()  # one loop: the backends' connection pools belong to it
        model = loop.run_until_complete(optimizer.model_for(None))

        def through_service(i: int) -> None:
            assert http.post("/query", json={"query": QUESTIONS[i % len(QUESTIONS)]}).json()["code"] == 0

        def in_process(i: int) -> None:
            loop.run_until_complete(
                optimizer.generator.generate(QUESTIONS[i % len(QUESTIONS)], model=model, shown=[], rejected=[])
            )

        in_process(0)  # warm both paths
        through_service(0)
        rows = []
        service_round, ceiling_round = [], []
        for i in range(1, args.rounds + 1):  # interleaved: the shared machine's noise hits both sides alike
            for side, run in ((service_round, through_service), (ceiling_round, in_process)):
                started = time.perf_counter()
                run(i)
                side.append(time.perf_counter() - started)
        rows.append(("candidate round (/query)", statistics.median(service_round), statistics.median(ceiling_round)))

        sid = http.get("/sessions").json()["data"]["sessions"][0]["session_id"]
        service_read = timed(lambda _: http.get(f"/session/{sid}").raise_for_status(), args.reads)
        ceiling_read = timed(lambda _: loop.run_until_complete(optimizer.store.get(sid)), args.reads)
        rows.append(("session read (/session/{sid})", statistics.median(service_read), statistics.median(ceiling_read)))
        rows.append(opro_job_row(http, optimizer, loop, args.jobs))
        http.close()
        server.should_exit = True

    print(f"\n{'what':32} {'service p50':>12} {'in-process p50':>15} {'service / in-process':>21}")
    for name, service, ceiling in rows:
        print(f"{name:32} {service * 1000:10.1f}ms {ceiling * 1000:13.1f}ms {service / ceiling:20.2f}x")


def opro_job_row(http: httpx.Client, optimizer, loop: asyncio.AbstractEventLoop, jobs: int) -> tuple:
    """Seconds per LLM call of a small OPRO job (2 steps × 2 candidates, 4 train / 4 test examples)."""
    examples = [json.loads(line) for line in SHIPPED_TASK.read_text().splitlines()[:8]]
    task = {"examples": examples, "scorer": "numeric", "steps": 2, "candidates_per_step": 2, "scorer_max_tokens": 16}
    runner = JobRunner(
        optimizer.settings, optimizer.chat, optimizer.store, lambda: optimizer.model_for(None), optimizer.models
    )

    def calls(job: dict) -> int:
        return sum(job["progress"]["calls"].values())

    def through_service(seed: int) -> tuple[float, int]:
        started = time.perf_counter()
        job_id = http.post("/optimize", json={**task, "seed": seed}).json()["data"]["job_id"]
        while (job := http.get(f"/optimize/{job_id}").json()["data"])["status"] in ("queued", "running"):
            time.sleep(0.1)
        assert job["status"] == "completed", job["error"]
        return time.perf_counter() - started, calls(job)

    async def run_in_process(seed: int) -> dict:
        job_id = (await runner.submit(task_from({**task, "seed": seed})))["job_id"]
        await runner.running[job_id][1]  # the job's own task: no polling on this side
        return (await runner.get(job_id)).detail()

    def in_process(seed: int) -> tuple[float, int]:
        started = time.perf_counter()
        job = loop.run_until_complete(run_in_process(seed))
        assert job["status"] == "completed", job["error"]
        return time.perf_counter() - started, calls(job)

    service, ceiling = [], []
    for seed in range(jobs):  # interleaved, the same seeds (train/test splits) on both sides
        for side, run in ((service, through_service), (ceiling, in_process)):
            seconds, count = run(seed)
            side.append(seconds / count)
    return ("OPRO job, per LLM call", statistics.median(service), statistics.median(ceiling))


if __name__ == "__main__":
    main()
