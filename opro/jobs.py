"""OPRO optimisation jobs: the paper's loop, run in the background and checkpointed in the store.

Step 0 scores the initial instruction on the training examples. Each later step builds the meta-prompt
from every instruction scored so far, asks the optimizer model for ``candidates_per_step`` new ones
(one call each, at the optimizer temperature), and scores those not seen before. At the end the
initial and the best instruction are both run on the test examples, side by side.

The job document is saved after every scored instruction, so a restart loses at most the instructions
being scored at that moment; ``resume`` picks every unfinished job up again where it stopped.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from opro.backends.base import ChatBackend, Message
from opro.config import Settings
from opro.metaprompt import Exemplar, InstructionPosition, build_meta_prompt, parse_instruction, place
from opro.scorers import RULES, ScorerName, judge_prompt, parse_verdict
from opro.store import SessionStore
from opro.tasks import TaskSpec
from services.errors import (
    BadRequest,
    Conflict,
    LingxiError,
    NotFound,
    NotReady,
    TooManyRequests,
    UpstreamError,
    UpstreamTimeout,
)

log = logging.getLogger("opro.jobs")

T = TypeVar("T")
MAX_RETRY_DELAY_S = 30.0
JUDGE_MAX_TOKENS = 8


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


UNFINISHED = (JobStatus.queued.value, JobStatus.running.value)


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


def retryable(exc: LingxiError) -> bool:
    return isinstance(exc, (UpstreamError, UpstreamTimeout, NotReady)) or exc.status_code == 429


async def gather_or_cancel(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather``, but the first failure cancels the rest instead of leaving them running."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class JobRunner:
    first_retry_delay_s = 1.0  # doubled after each failed try, up to MAX_RETRY_DELAY_S

    def __init__(
        self,
        settings: Settings,
        chat: ChatBackend,
        store: SessionStore,
        default_model: Callable[[], Awaitable[str | None]],
        models: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self.settings = settings
        self.chat = chat
        self.store = store
        self.default_model = default_model
        self.models = models
        self.llm_slots = asyncio.Semaphore(settings.optimize_concurrency)  # shared by every job
        self.running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self.save_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- the API -----------------------------------------------------------------------------
    async def submit(self, spec: TaskSpec) -> dict[str, Any]:
        spec.check(self.settings.optimize_max_examples)
        self.check_capacity()
        job = Job.new(spec, await self.resolve_models(spec))
        await self.write(job.job_id, job.to_dict())
        self.start(job)
        return job.detail()

    def check_capacity(self) -> None:
        if len(self.running) >= self.settings.optimize_max_jobs:
            raise TooManyRequests(f"{len(self.running)} optimisation jobs are running; wait for one or cancel one")

    async def resolve_models(self, spec: TaskSpec) -> dict[str, str]:
        named = [name for name in (spec.optimizer_model, spec.scorer_model, spec.judge_model) if name]
        if named:
            available = await self.models()
            for name in named:
                if name not in available:
                    raise BadRequest(f"model not available: {name}")
        default = None if all((spec.optimizer_model, spec.scorer_model)) else await self.default_model()
        optimizer = spec.optimizer_model or default
        scorer = spec.scorer_model or default
        if not optimizer or not scorer:
            raise NotReady("the LLM backend serves no chat model")
        return {"optimizer": optimizer, "scorer": scorer, "judge": spec.judge_model or scorer}

    async def get(self, job_id: str) -> Job:
        if job_id in self.running:
            return self.running[job_id][0]
        data = await self.store.get_job(job_id)
        if data is None:
            raise NotFound("optimisation job not found")
        return Job.from_dict(data)

    async def summaries(self) -> list[dict[str, Any]]:
        jobs = [Job.from_dict(data) for data in await self.store.jobs()]
        return [self.running[job.job_id][0].summary() if job.job_id in self.running else job.summary() for job in jobs]

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Stop an unfinished job (its results so far are kept); a finished job is answered unchanged."""
        job = await self.get(job_id)
        if job.status not in UNFINISHED:
            return job.detail()
        if job_id in self.running:
            task = self.running[job_id][1]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        job.status = JobStatus.cancelled.value  # ``current`` stays: a restart scores those proposals
        job.finished_at = job.updated_at = time.time()
        await self.write(job_id, job.to_dict())
        return job.detail()

    async def restart(self, job_id: str) -> dict[str, Any]:
        """Go on with a failed or cancelled job where it stopped (an unfinished one is answered as is)."""
        job = await self.get(job_id)
        if job.status in UNFINISHED:
            return job.detail()
        if job.status == JobStatus.completed.value:
            raise Conflict("the job has completed; start a new one (with more steps) to optimise further")
        self.check_capacity()
        job.status, job.error, job.finished_at = JobStatus.queued.value, None, None
        job.resumed += 1
        await self.write(job_id, job.to_dict())
        self.start(job)
        return job.detail()

    async def resume(self) -> int:
        """Start again every job the store holds as unfinished (after a restart); returns how many."""
        started = 0
        for data in await self.store.jobs(UNFINISHED):
            if data["job_id"] in self.running:
                continue
            try:
                job = Job.from_dict(data)
                job.spec  # noqa: B018 — the stored task must still validate
            except (TypeError, ValueError) as exc:  # written by another version, or edited by hand
                log.error("optimisation job %s cannot be resumed: %s", data["job_id"], exc)
                data.update(status=JobStatus.failed.value, error="the stored job could not be read back to resume it")
                await self.write(data["job_id"], data)
                continue
            job.resumed += 1
            self.start(job)
            started += 1
        return started

    async def shutdown(self) -> None:
        """Stop the jobs without marking them: they stay unfinished and resume on the next start."""
        tasks = [task for _, task in self.running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- persistence -------------------------------------------------------------------------
    async def write(self, job_id: str, data: dict[str, Any]) -> None:
        async with self.save_locks[job_id]:  # writes of one job land in the order they were made
            await self.store.save_job(data)

    async def save(self, job: Job) -> None:
        job.updated_at = time.time()
        # Shielded: a cancelled job still finishes its last write, before cancel() writes "cancelled".
        await asyncio.shield(self.write(job.job_id, job.to_dict()))

    # --- the loop ----------------------------------------------------------------------------
    def start(self, job: Job) -> None:
        task = asyncio.create_task(self.run(job), name=f"opro-job-{job.job_id}")
        self.running[job.job_id] = (job, task)
        task.add_done_callback(lambda _: self.running.pop(job.job_id, None))

    async def run(self, job: Job) -> None:
        try:
            job.status = JobStatus.running.value
            job.phase = "optimizing"
            await self.save(job)
            await self.optimize(job)
            job.phase = "testing"
            await self.save(job)
            await self.test(job)
            job.status, job.phase, job.finished_at = JobStatus.completed.value, "done", time.time()
            await self.save(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, LingxiError):
                job.error = exc.message
            else:
                log.exception("optimisation job %s failed", job.job_id)
                job.error = f"internal error: {type(exc).__name__}"
            job.status, job.finished_at = JobStatus.failed.value, time.time()
            await self.save(job)

    async def optimize(self, job: Job) -> None:
        spec = job.spec
        if not job.trajectory:
            await self.score(job, spec.initial_instruction)
            job.trajectory.append(step_entry(0, [{"instruction": spec.initial_instruction, "duplicate": False}], job))
            await self.save(job)
        while job.steps_done < spec.steps:
            step = len(job.trajectory)
            if job.current is None or job.current["step"] != step:
                job.current = await self.propose(job, spec, step)
                await self.save(job)
            fresh = [item["instruction"] for item in job.current["proposed"] if not item["duplicate"]]
            await gather_or_cancel(self.score(job, text) for text in fresh if text not in job.scored)
            job.trajectory.append(step_entry(step, job.current["proposed"], job, job.current["unparsed"]))
            job.current = None
            await self.save(job)

    async def propose(self, job: Job, spec: TaskSpec, step: int) -> dict[str, Any]:
        """One step's new instructions from the optimizer, exact duplicates marked (never rescored)."""
        rng = random.Random(f"{spec.seed}:{step}")  # the same exemplars if the step is proposed again
        picked = rng.sample(job.train, min(spec.exemplars_in_prompt, len(job.train)))
        meta_prompt = build_meta_prompt(
            list(job.scored.items()),
            [Exemplar(e["input"], e["target"]) for e in picked],
            spec.instruction_position,
            spec.max_instructions_in_prompt,
        )
        replies = await gather_or_cancel(
            self.call(
                job,
                "optimizer",
                [{"role": "user", "content": meta_prompt}],
                temperature=spec.optimizer_temperature,
                max_tokens=self.settings.optimize_instruction_max_tokens,
            )
            for _ in range(spec.candidates_per_step)
        )
        proposed, seen, unparsed = [], set(job.scored), 0
        for reply in replies:
            text = parse_instruction(reply)
            if not text:
                unparsed += 1
                continue
            proposed.append({"instruction": text, "duplicate": text in seen})
            seen.add(text)
        return {"step": step, "proposed": proposed, "unparsed": unparsed}

    async def score(self, job: Job, instruction: str) -> float:
        """The instruction's accuracy on the training examples; stored in the job, which is saved."""
        results = await self.answer_all(job, instruction, job.train)
        accuracy = sum(correct for _, correct in results) / len(results)
        job.scored[instruction] = accuracy
        await self.save(job)
        return accuracy

    async def test(self, job: Job) -> None:
        spec = job.spec
        start = spec.initial_instruction
        found = job.best_so_far()
        best = found[0] if found else start
        initial_results = await self.answer_all(job, start, job.test) if job.test else []
        best_results = initial_results if best == start else await self.answer_all(job, best, job.test)

        def outcome(instruction: str, results: list[tuple[str, bool]]) -> dict[str, Any]:
            test_score = sum(correct for _, correct in results) / len(results) if results else None
            return {"instruction": instruction, "train_score": job.scored[instruction], "test_score": test_score}

        job.initial, job.best = outcome(start, initial_results), outcome(best, best_results)
        job.comparison = [
            {
                "input": example["input"],
                "target": example["target"],
                "initial_output": first[0],
                "initial_correct": first[1],
                "best_output": second[0],
                "best_correct": second[1],
            }
            for example, first, second in zip(job.test, initial_results, best_results, strict=True)
        ]

    async def answer_all(self, job: Job, instruction: str, examples: list[dict[str, str]]) -> list[tuple[str, bool]]:
        return await gather_or_cancel(self.answer(job, instruction, example) for example in examples)

    async def answer(self, job: Job, instruction: str, example: dict[str, str]) -> tuple[str, bool]:
        """The scorer model's answer to one example with ``instruction`` in place, and whether it is right."""
        spec_task = job.task
        position = InstructionPosition(spec_task["instruction_position"])
        prompt = place(instruction, example["input"], position)
        output = await self.call(
            job,
            "scorer",
            [{"role": "user", "content": prompt}],
            temperature=spec_task["scorer_temperature"],
            max_tokens=spec_task["scorer_max_tokens"],
        )
        scorer = ScorerName(spec_task["scorer"])
        if scorer is not ScorerName.llm_judge:
            return output, RULES[scorer](output, example["target"])
        verdict = await self.call(
            job,
            "judge",
            [{"role": "user", "content": judge_prompt(example["input"], example["target"], output)}],
            temperature=0.0,
            max_tokens=JUDGE_MAX_TOKENS,
        )
        return output, parse_verdict(verdict)

    async def call(self, job: Job, role: str, messages: list[Message], *, temperature: float, max_tokens: int) -> str:
        """One LLM call in one of the shared slots. While the LLM is busy (429), loading or down (503),
        or failing (502, 504), the call is retried with backoff for up to ``optimize_retry_s``: a model
        restarting under a long job should not end it."""
        deadline = time.monotonic() + self.settings.optimize_retry_s
        delay = self.first_retry_delay_s
        while True:
            try:
                async with self.llm_slots:
                    reply = await self.chat.chat(
                        messages, model=job.models[role], max_tokens=max_tokens, temperature=temperature
                    )
                job.calls[role] += 1
                return reply
            except LingxiError as exc:
                if not retryable(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("optimisation job %s: %s; retrying in %.0f s", job.job_id, exc.message, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)


def step_entry(step: int, proposed: list[dict[str, Any]], job: Job, unparsed: int = 0) -> dict[str, Any]:
    instructions = [{**item, "score": job.scored[item["instruction"]]} for item in proposed]
    found = job.best_so_far()
    return {
        "step": step,
        "instructions": instructions,
        "unparsed": unparsed,
        "best_score": found[1] if found else None,
    }
