"""The OPRO loop of one job (Yang et al., "Large Language Models as Optimizers"), over its examples.

Step 0 scores the initial instruction on the training examples. Each later step builds the meta-prompt
from every instruction scored so far, asks the optimizer model for ``candidates_per_step`` new ones
(one call each, at the optimizer temperature), and scores those not seen before. At the end the
initial and the best instruction are both run on the test examples, side by side.

Every change to the job goes through ``save`` (after each scored instruction and each step's
proposals), so a job stopped at any point goes on from its last saved state.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from opro.backends.base import ChatBackend, Message
from opro.config import Settings
from opro.job import Job
from opro.metaprompt import Exemplar, InstructionPosition, build_meta_prompt, parse_instruction, place
from opro.scorers import RULES, ScorerName, judge_prompt, parse_verdict
from opro.tasks import TaskSpec
from services.errors import LingxiError, NotReady, UpstreamError, UpstreamTimeout

log = logging.getLogger("opro.jobs")

T = TypeVar("T")
MAX_RETRY_DELAY_S = 30.0
JUDGE_MAX_TOKENS = 8


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


class OproLoop:
    """Optimises and tests jobs; LLM calls of every job share ``optimize_concurrency`` slots."""

    first_retry_delay_s = 1.0  # doubled after each failed try, up to MAX_RETRY_DELAY_S

    def __init__(self, settings: Settings, chat: ChatBackend, save: Callable[[Job], Awaitable[None]]) -> None:
        self.settings = settings
        self.chat = chat
        self.save = save
        self.llm_slots = asyncio.Semaphore(settings.optimize_concurrency)

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
