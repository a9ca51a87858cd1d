"""Benchmark opro: ``.venv/bin/python bench/opro.py`` (``--rounds N``).

Starts the real llm (SmolLM2) and embedding (MiniLM) services and opro on 127.0.0.1, then compares
in one run:
  a candidate round through ``POST /query``  vs  ``CandidateGenerator.generate`` in-process (ceiling),
  ``GET /session/{sid}`` over HTTP           vs  the session store read in-process (ceiling).
No peer: nothing else here does what opro does.
"""

from __future__ import annotations

import argparse
import asyncio
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
from tests.conftest import free_port, running_service  # noqa: E402

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
        http.close()
        server.should_exit = True

    print(f"\n{'what':32} {'service p50':>12} {'in-process p50':>15} {'service / in-process':>21}")
    for name, service, ceiling in rows:
        print(f"{name:32} {service * 1000:10.1f}ms {ceiling * 1000:13.1f}ms {service / ceiling:20.2f}x")


if __name__ == "__main__":
    main()
