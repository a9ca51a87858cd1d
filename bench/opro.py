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
import os
import statistics
import subprocess
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
PEER_SCRIPT = ROOT / "bench" / "peers" / "dspy_copro.py"
LLM_MODEL = "smollm2:135m"
JOB_TASK = {
    "examples": [json.loads(line) for line in SHIPPED_TASK.read_text().splitlines()[:8]],
    "scorer": "numeric",
    "steps": 2,
    "candidates_per_step": 2,
    "scorer_max_tokens": 16,
}
PEER_ANSWER_MAX_TOKENS = 48  # DSPy's adapter wraps a 16-token answer in its field markers
PEER_PROPOSAL_MAX_TOKENS = 128  # two output fields (instruction and prefix) where opro has one
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
    parser.add_argument(
        "--dspy-python",
        default=os.environ.get("LINGXI_DSPY_PYTHON", "/tmp/dspy-venv/bin/python"),
        help="python of a venv with dspy==3.4.1 (the peer); absent: the peer rows are skipped",
    )
    parser.add_argument("--dspy-adapter", choices=("chat", "json", "xml"), default="chat", help="DSPy's adapter")
    parser.add_argument("--dspy-attempts", type=int, default=3, help="COPRO runs per seed until one completes")
    args = parser.parse_args()
    peer_python, note = args.dspy_python, None
    if not Path(peer_python).is_file():
        peer_python, note = None, f"no {args.dspy_python}; install the peer as this script's docstring says"
    elif subprocess.run([peer_python, "-c", "import dspy"], capture_output=True).returncode != 0:
        peer_python, note = None, f"{args.dspy_python} cannot import dspy; pip install dspy==3.4.1 there"
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
        service_round: list[float] = []
        ceiling_round: list[float] = []
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
        job_row, opro_runs, peer_runs = opro_job_rows(
            http, optimizer, loop, args.jobs, Peer(peer_python, llm, args.dspy_adapter, args.dspy_attempts)
        )
        rows.append(job_row)
        http.close()
        server.should_exit = True

    print(f"\n{'what':32} {'service p50':>12} {'in-process p50':>15} {'service / in-process':>21}")
    for name, service, ceiling in rows:
        print(f"{name:32} {service * 1000:10.1f}ms {ceiling * 1000:13.1f}ms {service / ceiling:20.2f}x")
    print_peer_table(opro_runs, peer_runs, note)


def opro_job_rows(http: httpx.Client, optimizer, loop: asyncio.AbstractEventLoop, jobs: int, peer: Peer) -> tuple:
    """Seconds per LLM call of a small OPRO job (2 steps × 2 candidates, 4 train / 4 test examples)
    through the service and in-process; with ``peer.python``, DSPy's COPRO on the same task too."""
    runner = JobRunner(
        optimizer.settings, optimizer.chat, optimizer.store, lambda: optimizer.model_for(None), optimizer.models
    )

    def calls(job: dict) -> int:
        return sum(job["progress"]["calls"].values())

    def through_service(seed: int) -> tuple[float, int]:
        before = llm_calls(peer.llm)
        started = time.perf_counter()
        job_id = http.post("/optimize", json={**JOB_TASK, "seed": seed}).json()["data"]["job_id"]
        while (job := http.get(f"/optimize/{job_id}").json()["data"])["status"] in ("queued", "running"):
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        assert job["status"] == "completed", job["error"]
        counted = llm_calls(peer.llm) - before
        best = job["best"]
        opro_runs.append(
            {
                "seconds": seconds,
                "calls": counted,
                "job_calls": calls(job),
                "instruction": best["instruction"],
                "train_score": best["train_score"],
                "test_score": best["test_score"],
            }
        )
        return seconds, calls(job)

    async def run_in_process(seed: int) -> dict:
        job_id = (await runner.submit(task_from({**JOB_TASK, "seed": seed})))["job_id"]
        await runner.running[job_id][1]  # the job's own task: no polling on this side
        return (await runner.get(job_id)).detail()

    def in_process(seed: int) -> tuple[float, int]:
        started = time.perf_counter()
        job = loop.run_until_complete(run_in_process(seed))
        assert job["status"] == "completed", job["error"]
        return time.perf_counter() - started, calls(job)

    def through_peer(seed: int) -> tuple[float, int]:
        train, test = task_from({**JOB_TASK, "seed": seed}).split()  # the opro job's own split
        for attempt in range(1, peer.attempts + 1):  # COPRO stops when SmolLM2 breaks DSPy's format
            result = peer.run([e.model_dump() for e in train], [e.model_dump() for e in test])
            peer_runs.append({**result, "seed": seed, "attempt": attempt})
            if "failed" not in result:
                break
        return result["seconds"], result["calls"]

    service: list[float] = []
    ceiling: list[float] = []
    opro_runs: list[dict] = []
    peer_runs: list[dict] = []
    sides = [(service, through_service), (ceiling, in_process)] + ([([], through_peer)] if peer.python else [])
    for seed in range(jobs):  # interleaved, the same seeds (train/test splits) on every side
        for side, run in sides:
            seconds, count = run(seed)
            side.append(seconds / max(count, 1))
    return ("OPRO job, per LLM call", statistics.median(service), statistics.median(ceiling)), opro_runs, peer_runs


def llm_calls(llm: str) -> int:
    """``/v1/chat/completions`` requests the llm service has answered (any status), from its /metrics:
    the same count for opro and the peer, whatever each thinks it sent."""
    text = httpx.get(f"{llm}/metrics", timeout=30, trust_env=False).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("lingxi_requests_total{") and 'route="/v1/chat/completions"' in line
        )
    )


class Peer:
    """DSPy COPRO in its own venv (``bench/peers/dspy_copro.py``), run as a subprocess per job."""

    def __init__(self, python: str | None, llm: str, adapter: str, attempts: int) -> None:
        self.python, self.llm, self.adapter, self.attempts = python, llm, adapter, attempts

    def run(self, train: list[dict], test: list[dict]) -> dict:
        task = {
            "api_base": f"{self.llm}/v1",
            "model": LLM_MODEL,
            "train": train,
            "test": test,
            "breadth": JOB_TASK["candidates_per_step"],  # proposals per round, as candidates_per_step
            "depth": JOB_TASK["steps"],  # proposal rounds, as steps (COPRO's first round includes the start)
            "temperature": 1.0,  # opro's optimizer_temperature default (the paper's)
            "answer_max_tokens": PEER_ANSWER_MAX_TOKENS,
            "proposal_max_tokens": PEER_PROPOSAL_MAX_TOKENS,
            "num_threads": 4,  # opro's optimize_concurrency default: LLM calls at once
            "adapter": self.adapter,
        }
        assert self.python, "no peer python"
        before = llm_calls(self.llm)
        started = time.perf_counter()
        done = subprocess.run(
            [self.python, str(PEER_SCRIPT)], input=json.dumps(task), capture_output=True, text=True, timeout=3600
        )
        outer = time.perf_counter() - started
        counted = llm_calls(self.llm) - before
        if done.returncode != 0:  # the script itself broke (not COPRO failing, which it reports)
            error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            return {"failed": error, "seconds": outer, "calls": counted, "process_seconds": outer}
        result = json.loads(done.stdout)
        # the calls of COPRO itself: those of the starting program's separate evaluation set apart
        return {**result, "calls": counted - result["start_eval"]["calls"], "process_seconds": outer}


def print_peer_table(opro_runs: list[dict], peer_runs: list[dict], note: str | None) -> None:
    print("\nOPRO job through the service vs DSPy COPRO (peer): same llm, task and splits; medians")
    if note:
        print(f"  peer skipped: {note}")
        return
    for run in opro_runs:
        print(
            f"  opro  {run['seconds']:6.1f}s {run['calls']:3d} calls (the job counts {run['job_calls']}) "
            f"train {run['train_score']:.2f} test {run['test_score']:.2f}  {run['instruction']!r}"
        )
    for run in peer_runs:
        head = f"  dspy  seed {run['seed']} try {run['attempt']}: {run['seconds']:6.1f}s {run['calls']:3d} calls"
        if "failed" in run:
            print(f"{head} FAILED, unparsed answers {run.get('failures', '?')}: {run['failed'][:400]!r}")
        else:
            print(
                f"{head} ({run['process_seconds']:.1f}s with DSPy's start-up) train {run['train_score']:.2f} "
                f"test {run['test_score']:.2f} unparsed answers {run['failures']}  "
                f"{run['best_instruction']!r} / prefix {run['best_prefix']!r}"
            )
        for error in run.get("parse_errors", []):
            print(f"        {error[:300]!r}")
    starts = [run["start_eval"] for run in peer_runs if "start_eval" in run]
    if starts:
        seconds = statistics.median(start["seconds"] / max(start["calls"], 1) for start in starts)
        score = statistics.median(start["score"] for start in starts)
        print(
            f"\n  DSPy answer calls alone (its starting program on the train examples, before COPRO), "
            f"{len(starts)} runs: {statistics.median(start['calls'] for start in starts):.0f} calls for "
            f"{starts[0]['examples']} examples (ChatAdapter retries unparsed answers with its JSONAdapter), "
            f"{seconds:.2f} s a call, unparsed answers {sum(start['unparsed'] for start in starts)} of "
            f"{sum(start['examples'] for start in starts)}, train score {score:.2f}"
        )
    completed = [run for run in peer_runs if "failed" not in run]
    failed = [run for run in peer_runs if "failed" in run]
    print(f"\n{'side':28} {'runs':>5} {'wall s':>7} {'LLM calls':>9} {'s/call':>7} {'train':>6} {'test':>6}")
    per_call = {}
    for name, runs in (("opro job (service)", opro_runs), ("DSPy COPRO", completed), ("DSPy COPRO, failed", failed)):
        if not runs:
            continue
        per_call[name] = statistics.median(run["seconds"] / max(run["calls"], 1) for run in runs)
        scores = "     –      –"
        if "failed" not in runs[0]:
            scores = (
                f"{statistics.median(run['train_score'] for run in runs):6.2f} "
                f"{statistics.median(run['test_score'] for run in runs):6.2f}"
            )
        print(
            f"{name:28} {len(runs):5d} {statistics.median(run['seconds'] for run in runs):7.1f} "
            f"{statistics.median(run['calls'] for run in runs):9.0f} {per_call[name]:7.2f} {scores}"
        )
    if completed:
        wall = statistics.median(run["seconds"] for run in opro_runs) / statistics.median(
            run["seconds"] for run in completed
        )
        call = per_call["opro job (service)"] / per_call["DSPy COPRO"]
        print(f"{'opro / DSPy COPRO':28} {'':5} {wall:6.2f}x {'':9} {call:6.2f}x")
    # no ratio for failed runs: they end in the first proposal call(s), nothing like a job's mix of calls
    if starts:
        ratio = per_call["opro job (service)"] / seconds
        print(f"{'opro job / DSPy answer call':28} {'':5} {'':7} {'':9} {ratio:6.2f}x")


if __name__ == "__main__":
    main()
