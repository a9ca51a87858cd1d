"""Task definitions: examples from JSON, JSONL and CSV, the train/test split, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.exceptions import RequestValidationError

from opro.tasks import parse_examples_file, task_from
from services.errors import BadRequest, PayloadTooLarge

SHIPPED = Path(__file__).parent.parent / "data" / "opro" / "arithmetic.jsonl"


def test_the_shipped_arithmetic_task_parses_and_suits_the_numeric_scorer() -> None:
    rows = parse_examples_file(SHIPPED.name, SHIPPED.read_bytes())
    task = task_from({"examples": rows, "scorer": "numeric"})
    task.check(max_examples=2000)
    assert len(task.examples) == len(rows) >= 40
    assert any("苹果" in example.input for example in task.examples)


def test_jsonl_csv_and_json_arrays_give_the_same_examples() -> None:
    jsonl = b'{"input": "1+1?", "target": 2}\n\n{"input": "2+2?", "target": "4", "note": "extra keys are ignored"}\n'
    csv = '\ufeffInput,Target\n1+1?,2\n"2+2?",4\n'.encode()
    array = b'[{"input": "1+1?", "target": 2}, {"input": "2+2?", "target": "4"}]'
    expected = [("1+1?", "2"), ("2+2?", "4")]
    for name, content in (("a.jsonl", jsonl), ("a.csv", csv), ("a.json", array), ("upload", jsonl)):
        task = task_from({"examples": parse_examples_file(name, content)})
        assert [(e.input, e.target) for e in task.examples] == expected, name


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.jsonl", b"", "empty"),
        ("a.jsonl", b'{"input": "x", "target": "y"}\nnot json\n', "line 2"),
        ("a.jsonl", b'["x", "y"]\n', "list of"),
        ("a.csv", b"question,answer\nx,y\n", "input and target"),
        ("a.jsonl", b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name: str, content: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_examples_file(name, content)


def test_the_split_is_seeded_and_keeps_both_sides_non_empty() -> None:
    examples = [{"input": f"q{i}", "target": str(i)} for i in range(10)]
    task = task_from({"examples": examples, "train_fraction": 0.3, "seed": 4})
    train, test = task.split()
    assert (len(train), len(test)) == (3, 7)
    assert sorted(e.input for e in train + test) == sorted(e["input"] for e in examples)
    assert task.split() == (train, test)
    assert task_from({"examples": examples, "train_fraction": 0.3, "seed": 5}).split() != (train, test)
    tiny = task_from({"examples": examples[:2], "train_fraction": 0.99})
    assert [len(side) for side in tiny.split()] == [1, 1]
    everything = task_from({"examples": examples, "train_fraction": 1})
    assert [len(side) for side in everything.split()] == [10, 0]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"examples": [{"input": "only one", "target": "1"}]},
        {"examples": [{"input": "a", "target": "1"}, {"input": "b"}]},
        {"examples": [{"input": "a", "target": "1"}] * 2, "scorer": "bleu"},
        {"examples": [{"input": "a", "target": "1"}] * 2, "steps": 0},
        {"examples": [{"input": "a", "target": "1"}] * 2, "candidates_per_step": 100},
        {"examples": [{"input": "a", "target": "1"}] * 2, "train_fraction": 0},
        {"examples": [{"input": "a", "target": "1"}] * 2, "instruction_position": "middle"},
        {"examples": [{"input": "a", "target": "1"}] * 2, "stepz": 3},
    ],
)
def test_malformed_tasks_fail_validation(fields: dict) -> None:
    with pytest.raises(RequestValidationError):
        task_from(fields)


def test_targets_the_scorer_cannot_use_and_oversized_tasks_are_refused() -> None:
    examples = [{"input": "a", "target": "1"}, {"input": "b", "target": "two"}]
    with pytest.raises(BadRequest, match=r"examples\[1\].target is not a number"):
        task_from({"examples": examples, "scorer": "numeric"}).check(max_examples=10)
    with pytest.raises(BadRequest, match="regular expression"):
        task_from({"examples": [{"input": "a", "target": "(x"}] * 2, "scorer": "regex"}).check(max_examples=10)
    with pytest.raises(PayloadTooLarge):
        task_from({"examples": examples * 6}).check(max_examples=10)
