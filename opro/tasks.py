"""An optimisation task: labelled examples, how answers are scored, and the loop's knobs.

Examples come inline (``examples``: ``[{"input", "target"}]``) or as an uploaded JSONL or CSV file with
the same two fields. Everything wrong with a task is a 4xx before any job starts.
"""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opro.metaprompt import MAX_INSTRUCTION_CHARS, InstructionPosition
from opro.scorers import ScorerName, check_target
from services.errors import BadRequest, PayloadTooLarge

MAX_FIELD_CHARS = 4000


class Example(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str = Field(min_length=1, max_length=MAX_FIELD_CHARS)
    target: str = Field(min_length=1, max_length=MAX_FIELD_CHARS)

    @field_validator("input", "target", mode="before")
    @classmethod
    def numbers_as_text(cls, value: Any) -> Any:
        """JSONL files often carry numeric targets (``"target": 42``)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value.strip() if isinstance(value, str) else value


class TaskSpec(BaseModel):
    """The body of ``POST /optimize`` (defaults follow the paper where it has one)."""

    model_config = ConfigDict(extra="forbid")

    examples: list[Example] = Field(min_length=2, description="Labelled examples, split into train and test.")
    scorer: ScorerName = ScorerName.exact
    instruction_position: InstructionPosition = InstructionPosition.before_question
    initial_instruction: str = Field("", max_length=MAX_INSTRUCTION_CHARS, description="Step 0's instruction.")
    steps: int = Field(5, ge=1, le=200, description="Optimisation steps after scoring the initial instruction.")
    candidates_per_step: int = Field(8, ge=1, le=32, description="Instructions the optimizer writes per step.")
    optimizer_model: str | None = Field(None, description="Model that writes instructions (default: the default).")
    scorer_model: str | None = Field(None, description="Model that answers the examples (default: the default).")
    judge_model: str | None = Field(None, description="Model of the llm_judge scorer (default: scorer_model).")
    optimizer_temperature: float = Field(1.0, ge=0.0, le=2.0)
    scorer_temperature: float = Field(0.0, ge=0.0, le=2.0)
    scorer_max_tokens: int = Field(256, ge=1, le=4096, description="Token budget of one scored answer.")
    train_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Share of the examples scored every step.")
    seed: int = Field(0, description="Seed of the train/test split and the meta-prompt's exemplars.")
    max_instructions_in_prompt: int = Field(20, ge=1, le=100, description="Past instructions the optimizer sees.")
    exemplars_in_prompt: int = Field(3, ge=0, le=20, description="Training exemplars the optimizer sees.")
    name: str | None = Field(None, max_length=200, description="A label for the job list.")

    @field_validator("initial_instruction", mode="after")
    @classmethod
    def one_line(cls, value: str) -> str:
        return " ".join(value.split())

    def check(self, max_examples: int) -> None:
        """What pydantic cannot say: the example count and whether each target suits the scorer."""
        if len(self.examples) > max_examples:
            raise PayloadTooLarge(f"{len(self.examples)} examples; at most {max_examples} per task")
        for index, example in enumerate(self.examples):
            reason = check_target(self.scorer, example.target)
            if reason:
                raise BadRequest(f"examples[{index}].target {reason}: {example.target!r}")

    def split(self) -> tuple[list[Example], list[Example]]:
        """(train, test): a seeded shuffle; both sides non-empty unless ``train_fraction`` is 1."""
        shuffled = list(self.examples)
        random.Random(self.seed).shuffle(shuffled)
        if self.train_fraction >= 1.0:
            return shuffled, []
        n_train = min(len(shuffled) - 1, max(1, round(len(shuffled) * self.train_fraction)))
        return shuffled[:n_train], shuffled[n_train:]


def parse_examples_file(filename: str, content: bytes) -> list[dict[str, Any]]:
    """Rows of an uploaded JSONL (one ``{"input", "target"}`` object per line) or CSV (a header with
    ``input`` and ``target`` columns) file. The format follows the file name, else the first byte."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{filename or 'the file'} is not UTF-8 text") from exc
    if not text.strip():
        raise BadRequest(f"{filename or 'the file'} is empty")
    name = filename.lower()
    is_csv = name.endswith((".csv", ".tsv")) or not (name.endswith((".jsonl", ".json")) or text.lstrip()[0] in "{[")
    return parse_csv(text, delimiter="\t" if name.endswith(".tsv") else ",") if is_csv else parse_jsonl(text)


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    if stripped.startswith("["):  # a plain JSON array is accepted too
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the file is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise BadRequest('a JSON examples file must be a list of {"input", "target"} objects')
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise BadRequest(f"line {number} is not a JSON object")
        rows.append(row)
    return rows


def parse_csv(text: str, delimiter: str = ",") -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    if "input" not in columns or "target" not in columns:
        raise BadRequest(f"the CSV header must name the columns input and target (it has: {', '.join(columns)})")
    reader.fieldnames = columns
    try:
        return [{"input": row.get("input"), "target": row.get("target")} for row in reader]
    except csv.Error as exc:
        raise BadRequest(f"the CSV file cannot be read: {exc}") from exc


def task_from(fields: dict[str, Any]) -> TaskSpec:
    """A validated task from a JSON body or from form fields (where every value is a string)."""
    try:
        return TaskSpec.model_validate(fields)
    except ValidationError as exc:  # rendered by the kernel like any body error: 422 "steps: ..."
        raise RequestValidationError(exc.errors()) from exc
