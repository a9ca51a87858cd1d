"""DSPy COPRO on opro's benchmark task: the peer row of ``bench/opro.py``.

Runs in its own virtual environment, never the project's (DSPy is not a lingxi dependency)::

    python3 -m venv /tmp/dspy-venv && /tmp/dspy-venv/bin/pip install dspy==3.4.1
    /tmp/dspy-venv/bin/python bench/peers/dspy_copro.py < task.json

It imports no lingxi package (opro's scorers are loaded from their file). stdin is one JSON object:
``api_base`` (the llm service's ``/v1``), ``model``, ``train`` and ``test`` (``[{"input", "target"}]``,
the split the opro job used), ``breadth``, ``depth``, ``temperature`` (the proposals'),
``answer_max_tokens``, ``proposal_max_tokens``, ``num_threads``, ``adapter`` (``chat``, ``json`` or
``xml``).

stdout is one JSON object: ``seconds`` (COPRO's compile plus the test evaluation, not DSPy's import),
``best_instruction``, ``best_prefix``, ``train_score`` and ``test_score`` (0–1), ``initial_test_score``,
``candidates`` (scored by COPRO), ``failures`` (answers DSPy could not parse, scored 0 as
``Evaluate``'s ``failure_score``), ``parse_errors`` (a few of those errors, to quote), and
``start_eval``: before COPRO starts, the starting program scored once on the training examples
(``seconds``, ``calls`` read on the llm's ``/metrics``, ``score``, ``unparsed``), which measures DSPy's
answer calls alone, even where COPRO later stops. When COPRO stops (a proposal DSPy cannot parse
raises out of ``compile``), stdout is ``{"failed": <the error>, "seconds", "failures",
"parse_errors", "start_eval"}`` instead.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import dspy
from dspy.teleprompt import COPRO


def load_opro_scorers() -> ModuleType:
    """opro's scorers, loaded from their file: the peer is scored by the same rule as opro, and
    ``opro/scorers.py`` needs nothing beyond the standard library and ``regex`` (a DSPy dependency)."""
    path = Path(__file__).resolve().parents[2] / "opro" / "scorers.py"
    spec = importlib.util.spec_from_file_location("opro_scorers", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


numeric = load_opro_scorers().numeric


def metric(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> float:
    return float(numeric(str(prediction.answer or ""), str(example.answer)))


def llm_calls(api_base: str) -> int:
    """The llm service's ``/v1/chat/completions`` request count, from its ``/metrics`` (as the bench reads it)."""
    with urllib.request.urlopen(api_base.removesuffix("/v1") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("lingxi_requests_total{") and 'route="/v1/chat/completions"' in line
        )
    )


class ParseErrors(logging.Handler):
    """Collects the errors ``Evaluate`` logs for answers the adapter could not parse."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


ADAPTERS = {"chat": dspy.ChatAdapter, "json": dspy.JSONAdapter, "xml": dspy.XMLAdapter}


def main() -> None:
    task = json.load(sys.stdin)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)  # every call reaches the llm
    common = {"api_base": task["api_base"], "api_key": "none", "cache": False, "num_retries": 0}
    answerer = dspy.LM(f"openai/{task['model']}", temperature=0.0, max_tokens=task["answer_max_tokens"], **common)
    proposer = dspy.LM(
        f"openai/{task['model']}", temperature=task["temperature"], max_tokens=task["proposal_max_tokens"], **common
    )
    adapter = ADAPTERS[task["adapter"]]()
    dspy.configure(lm=answerer, adapter=adapter, max_errors=10**6)
    errors = ParseErrors()
    logging.getLogger("dspy").addHandler(errors)

    def examples(rows: list[dict]) -> list[dspy.Example]:
        return [dspy.Example(question=row["input"], answer=str(row["target"])).with_inputs("question") for row in rows]

    train, test = examples(task["train"]), examples(task["test"])
    student = dspy.Predict("question -> answer")  # DSPy's default instruction is COPRO's starting point
    initial_instruction = student.signature.instructions
    optimizer = COPRO(
        prompt_model=proposer,
        metric=metric,
        breadth=task["breadth"],
        depth=task["depth"],
        init_temperature=task["temperature"],
    )
    eval_kwargs = {"num_threads": task["num_threads"], "display_progress": False}
    # First, apart from COPRO: the starting program scored on the training examples (what COPRO's first
    # evaluation of it does). It measures DSPy's answer calls alone, even when COPRO later stops.
    before, started = llm_calls(task["api_base"]), time.perf_counter()
    start_score = dspy.Evaluate(devset=train, metric=metric, **eval_kwargs)(student).score / 100
    start_eval = {
        "seconds": time.perf_counter() - started,
        "calls": llm_calls(task["api_base"]) - before,
        "examples": len(train),
        "score": start_score,
        "unparsed": len(errors.messages),
    }
    del errors.messages[:]
    started = time.perf_counter()
    try:
        best = optimizer.compile(student, trainset=train, eval_kwargs=eval_kwargs)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden: what failed is the result
        report = {"failed": f"{type(exc).__name__}: {exc}"[:1500], "seconds": time.perf_counter() - started}
        report.update(failures=len(errors.messages), parse_errors=errors.messages[:3], start_eval=start_eval)
        json.dump(report, sys.stdout)
        return
    on_test = dspy.Evaluate(devset=test, metric=metric, **eval_kwargs)
    test_score = on_test(best).score / 100 if test else None
    initial_test_score = on_test(student).score / 100 if test else None  # opro's job tests both too
    seconds = time.perf_counter() - started
    top = best.candidate_programs[0]
    report = {
        "seconds": seconds,
        "initial_instruction": initial_instruction,
        "best_instruction": top["instruction"],
        "best_prefix": top["prefix"],
        "train_score": top["score"] / 100,
        "test_score": test_score,
        "initial_test_score": initial_test_score,
        "candidates": len(best.candidate_programs),
        "failures": len(errors.messages),
        "parse_errors": errors.messages[:3],
        "start_eval": start_eval,
    }
    json.dump(report, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
