"""An OPRO run on the embedded default, as a user would start it: ``.venv/bin/python bench/opro_trajectory.py``.

Starts the real llm (its default, Qwen2.5-Coder-0.5B-Instruct), embedding and opro services on free
127.0.0.1 ports, sends the shipped labelled task (``tests/data/opro/arithmetic.jsonl``) to
``POST /optimize`` with the same model as optimizer and scorer, and prints the accuracy trajectory:
per step, the best train score so far and the held-out test score of the instruction that was best
at that step (the test set is scored once at the end, so only for the instructions that got there:
the initial one and the final best). ``--json PATH`` keeps the whole job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]

from tests.conftest import running_service  # noqa: E402

TASK = ROOT / "tests" / "data" / "opro" / "arithmetic.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=4, help="candidates_per_step")
    parser.add_argument("--train-fraction", type=float, default=0.25)
    parser.add_argument("--scorer-max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the finished job here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opro-trajectory-"))
    with running_service("llm") as llm, running_service("embedding") as embedding:
        env = {
            "OPRO_LLM_URL": f"{llm}/v1",
            "OPRO_EMBEDDING_URL": embedding,
            "OPRO_DATA_DIR": str(workdir / "data"),
            "OPRO_FEEDBACK_PATH": str(workdir / "feedback.jsonl"),
        }
        with running_service("opro", env) as opro:
            http = httpx.Client(base_url=opro, timeout=600, trust_env=False)
            form = {
                "scorer": "numeric",
                "steps": str(args.steps),
                "candidates_per_step": str(args.candidates),
                "train_fraction": str(args.train_fraction),
                "scorer_max_tokens": str(args.scorer_max_tokens),
                "seed": str(args.seed),
            }
            started = time.monotonic()
            with TASK.open("rb") as file:
                reply = http.post("/optimize", data=form, files={"file": (TASK.name, file)})
            reply.raise_for_status()
            job_id = reply.json()["data"]["job_id"]
            while (job := http.get(f"/optimize/{job_id}").json()["data"])["status"] in ("queued", "running"):
                time.sleep(5)
            elapsed = time.monotonic() - started
    if args.json:
        args.json.write_text(json.dumps(job, ensure_ascii=False, indent=1))
    report(job, elapsed)


def report(job: dict, elapsed: float) -> None:
    print(f"status {job['status']} {job.get('error') or ''}; {elapsed / 60:.1f} min; calls {job['progress']['calls']}")
    print(f"examples {job['examples']}; models {job['models']}")
    initial, best = job["initial"] or {}, job["best"] or {}
    print("| step | proposed | scored | unparsed | best train so far | instruction best so far |")
    print("|---:|---:|---:|---:|---:|---|")
    leader = ("", -1.0)
    for entry in job["trajectory"]:
        fresh = [item for item in entry["instructions"] if not item.get("duplicate")]
        for item in fresh:
            if item["score"] > leader[1]:
                leader = (item["instruction"], item["score"])
        print(
            f"| {entry['step']} | {len(entry['instructions'])} | {len(fresh)} | {entry['unparsed']} "
            f"| {entry['best_score']:.2f} | {leader[0]!r} |"
        )
    for name, row in (("initial", initial), ("best", best)):
        print(f"{name}: train {row.get('train_score')} test {row.get('test_score')} {row.get('instruction')!r}")


if __name__ == "__main__":
    main()
