"""One OPRO optimisation job as it is stored: its task, examples, progress and results (``Job``)."""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from opro.tasks import TaskSpec


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


UNFINISHED = (JobStatus.queued.value, JobStatus.running.value)


class LeaseLost(Exception):
    """Another replica holds the job now (it took it over, or the job was cancelled elsewhere)."""


@dataclass
class Job:
    job_id: str
    task: dict[str, Any]  # the TaskSpec without its examples
    train: list[dict[str, str]]
    test: list[dict[str, str]]
    models: dict[str, str]  # optimizer, scorer, judge
    status: str = JobStatus.queued.value
    phase: str = "queued"  # queued → optimizing → testing → done
    scored: dict[str, float] = field(default_factory=dict)  # instruction → train accuracy, in scoring order
    trajectory: list[dict[str, Any]] = field(default_factory=list)  # one entry per finished step
    current: dict[str, Any] | None = None  # the step being scored: its proposals survive a restart
    initial: dict[str, Any] | None = None  # {"instruction", "train_score", "test_score"}
    best: dict[str, Any] | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)  # initial vs best on each test example
    calls: dict[str, int] = field(default_factory=lambda: {"optimizer": 0, "scorer": 0, "judge": 0})
    error: str | None = None
    resumed: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @classmethod
    def new(cls, spec: TaskSpec, models: dict[str, str]) -> Job:
        train, test = spec.split()
        return cls(
            job_id=uuid.uuid4().hex,
            task=spec.model_dump(mode="json", exclude={"examples"}),
            train=[example.model_dump() for example in train],
            test=[example.model_dump() for example in test],
            models=models,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.model_validate({**self.task, "examples": self.train + self.test})

    @property
    def steps_done(self) -> int:
        """Optimisation steps finished (step 0, the initial instruction, not counted)."""
        return max(len(self.trajectory) - 1, 0)

    def best_so_far(self) -> tuple[str, float] | None:
        """The highest-scoring instruction; on a tie the earliest, which is also the cheaper to trust."""
        if not self.scored:
            return None
        return max(self.scored.items(), key=lambda item: item[1])  # max keeps the first of equals

    def progress(self) -> dict[str, Any]:
        return {
            "step": self.steps_done,
            "steps": self.task["steps"],
            "phase": self.phase,
            "scored_instructions": len(self.scored),
            "calls": dict(self.calls),
        }

    def summary(self) -> dict[str, Any]:
        best = self.best
        if best is None and (found := self.best_so_far()):
            best = {"instruction": found[0], "train_score": found[1], "test_score": None}
        return {
            "job_id": self.job_id,
            "name": self.task.get("name"),
            "status": self.status,
            "error": self.error,
            "progress": self.progress(),
            "best": best,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "task": self.task,
            "models": self.models,
            "examples": {"train": len(self.train), "test": len(self.test)},
            "trajectory": self.trajectory,
            "initial": self.initial,
            "comparison": self.comparison,
            "resumed": self.resumed,
        }
