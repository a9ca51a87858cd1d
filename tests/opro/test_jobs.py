"""The OPRO loop itself, with a scripted chat model so that every call can be counted exactly.

The real-model run (SmolLM2 as optimizer and scorer) is in test_optimize.py; here the optimizer's
replies are fixed, and the scorer answers right exactly when its instruction says "carefully".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opro.backends.base import Message
from opro.config import Settings
from opro.job import Job
from opro.jobs import JobRunner
from opro.store import SessionStore
from opro.tasks import task_from
from services.errors import Conflict, NotReady

EXAMPLES = [{"input": f"What is {a} + {b}?", "target": str(a + b)} for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]


class ScriptedChat:
    def __init__(self, proposals: list[str]) -> None:
        self.proposals: Iterator[str] = iter(proposals)
        self.meta_prompts: list[str] = []
        self.answered: list[str] = []
        self.hold: str | None = None  # answers to prompts with this text wait for ``gate``
        self.gate = asyncio.Event()

    async def models(self) -> list[str]:
        return ["scripted"]

    async def chat(
        self, messages: list[Message], *, model: str | None, max_tokens: int, temperature: float | None = None
    ) -> str:
        prompt = messages[-1]["content"]
        if prompt.startswith("I have some texts"):
            self.meta_prompts.append(prompt)
            return next(self.proposals)
        if self.hold is not None and self.hold in prompt:
            await self.gate.wait()
        self.answered.append(prompt)
        a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)", prompt)[0])
        return f"The answer is {a + b}." if "carefully" in prompt else "The answer is 0."

    async def aclose(self) -> None:
        pass


def runner_for(chat: ScriptedChat, store: SessionStore, settings: Settings | None = None) -> JobRunner:
    async def default_model() -> str:
        return "scripted"

    return JobRunner(settings or Settings(), chat, store, default_model, chat.models)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the job never got there")


async def finished(runner: JobRunner, job_id: str) -> Job:
    for _ in range(500):
        job = await runner.get(job_id)
        if job.status not in ("queued", "running"):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the job did not finish")


async def has_current(runner: JobRunner, job_id: str) -> bool:
    return (await runner.get(job_id)).current is not None


async def two_steps_done(runner: JobRunner, job_id: str) -> bool:
    return (await runner.get(job_id)).steps_done >= 2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    store = SessionStore.open(None, str(tmp_path))
    yield store
    store.close()


def task(**overrides: Any) -> dict[str, Any]:
    return {"examples": EXAMPLES, "scorer": "numeric", "steps": 2, "candidates_per_step": 2, **overrides}


def test_a_run_scores_each_new_instruction_once_and_keeps_the_best(store: SessionStore) -> None:
    chat = ScriptedChat(["[Add carefully.]", "Sure: [Add carefully.]", "[Add carefully.]", "Guess quickly."])

    async def scenario() -> dict[str, Any]:
        runner = runner_for(chat, store)
        submitted = await runner.submit(task_from(task()))
        assert submitted["status"] == "queued" and submitted["examples"] == {"train": 2, "test": 2}
        return (await finished(runner, submitted["job_id"])).detail()

    job = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    steps = job["trajectory"]
    assert [entry["step"] for entry in steps] == [0, 1, 2]
    assert steps[0]["instructions"] == [{"instruction": "", "duplicate": False, "score": 0.0}]
    assert steps[1]["instructions"] == [
        {"instruction": "Add carefully.", "duplicate": False, "score": 1.0},
        {"instruction": "Add carefully.", "duplicate": True, "score": 1.0},
    ]
    assert steps[2]["instructions"] == [
        {"instruction": "Add carefully.", "duplicate": True, "score": 1.0},
        {"instruction": "Guess quickly.", "duplicate": False, "score": 0.0},
    ]
    assert [entry["best_score"] for entry in steps] == [0.0, 1.0, 1.0]
    # Three distinct instructions on 2 training examples, then the initial and the best on 2 test examples.
    assert job["progress"]["calls"] == {"optimizer": 4, "scorer": 3 * 2 + 2 * 2, "judge": 0}
    assert len(chat.answered) == 10
    assert job["initial"] == {"instruction": "", "train_score": 0.0, "test_score": 0.0}
    assert job["best"] == {"instruction": "Add carefully.", "train_score": 1.0, "test_score": 1.0}
    assert [(row["initial_correct"], row["best_correct"]) for row in job["comparison"]] == [(False, True)] * 2
    assert all(row["best_output"].startswith("The answer is") for row in job["comparison"])
    # The second step's meta-prompt shows what the first step found, best last.
    assert re.search(r"text:\n\nscore:\n0\n\ntext:\nAdd carefully.\nscore:\n100\n", chat.meta_prompts[-1])
    assert "Q: <INS>\nWhat is" in chat.meta_prompts[-1]


def test_the_llm_judge_asks_the_judge_model_once_per_answer(store: SessionStore) -> None:
    class Judge(ScriptedChat):
        async def chat(self, messages: list[Message], **kwargs: Any) -> str:
            if messages[-1]["content"].startswith("You are grading"):
                return "yes" if "Answer to grade:\nThe answer is 0." not in messages[-1]["content"] else "no"
            return await super().chat(messages, **kwargs)

    chat = Judge(["[Add carefully.]"])

    async def scenario() -> dict[str, Any]:
        runner = runner_for(chat, store)
        job_id = (await runner.submit(task_from(task(scorer="llm_judge", steps=1, candidates_per_step=1))))["job_id"]
        return (await finished(runner, job_id)).detail()

    job = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    assert job["best"]["train_score"] == 1.0 and job["initial"]["train_score"] == 0.0
    assert job["progress"]["calls"]["judge"] == job["progress"]["calls"]["scorer"] == 2 * 2 + 2 * 2


def test_a_job_stopped_by_shutdown_resumes_without_rescoring(store: SessionStore) -> None:
    first = ScriptedChat(["[Add carefully.]", "[Go carefully.]"])
    first.hold = "carefully"  # step 1's answers hang, as a slow model's would

    async def until_shutdown() -> str:
        runner = runner_for(first, store)
        job_id = (await runner.submit(task_from(task(steps=1))))["job_id"]
        await until(lambda: has_current(runner, job_id))
        await asyncio.sleep(0.05)
        await runner.shutdown()
        return job_id

    job_id = asyncio.run(until_shutdown())
    stored = asyncio.run(store.get_job(job_id))
    assert stored is not None and stored["status"] == "running"
    assert [item["instruction"] for item in stored["current"]["proposed"]] == ["Add carefully.", "Go carefully."]

    second = ScriptedChat([])  # no proposals left to give: the stored ones must be used

    async def after_restart() -> dict[str, Any]:
        runner = runner_for(second, store)
        assert await runner.resume() == 1
        return (await finished(runner, job_id)).detail()

    job = asyncio.run(after_restart())
    assert job["status"] == "completed", job["error"]
    assert job["resumed"] == 1
    assert [entry["step"] for entry in job["trajectory"]] == [0, 1]
    assert not second.meta_prompts
    # Step 0 is not scored again: two new instructions on 2 train examples, then initial and best on test.
    assert len(second.answered) == 2 * 2 + 2 * 2
    assert job["trajectory"][0]["instructions"] == [{"instruction": "", "duplicate": False, "score": 0.0}]
    assert job["best"]["train_score"] == 1.0


def test_cancel_stops_the_job_and_keeps_what_it_found(store: SessionStore) -> None:
    chat = ScriptedChat(["[Add carefully.]"] * 100)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        runner = runner_for(chat, store)
        job_id = (await runner.submit(task_from(task(steps=50, candidates_per_step=1))))["job_id"]
        await until(lambda: two_steps_done(runner, job_id))
        cancelled = await runner.cancel(job_id)
        calls = len(chat.answered)
        await asyncio.sleep(0.2)
        assert len(chat.answered) == calls  # nothing runs after the cancel
        again = await runner.cancel(job_id)  # idempotent
        return cancelled, again, calls

    cancelled, again, _ = asyncio.run(scenario())
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert again["status"] == "cancelled" and again["trajectory"] == cancelled["trajectory"]
    assert cancelled["best"]["instruction"] == "Add carefully."
    stored = asyncio.run(store.get_job(cancelled["job_id"]))
    assert stored is not None and stored["status"] == "cancelled"


class Flaky(ScriptedChat):
    """Answers 503 "still loading" to its first ``failures`` calls, as an LLM service that restarts does."""

    def __init__(self, proposals: list[str], failures: int) -> None:
        super().__init__(proposals)
        self.failures = failures

    async def chat(self, messages: list[Message], **kwargs: Any) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise NotReady("llm service: local model SmolLM2-135M-Instruct is still loading; retry shortly")
        return await super().chat(messages, **kwargs)


def test_a_loading_llm_is_waited_for_and_one_that_stays_down_fails_the_job(store: SessionStore) -> None:
    async def run(chat: Flaky, retry_s: float) -> dict[str, Any]:
        runner = runner_for(chat, store, Settings(optimize_retry_s=retry_s))
        runner.loop.first_retry_delay_s = 0.01
        job_id = (await runner.submit(task_from(task(steps=1, candidates_per_step=1))))["job_id"]
        return (await finished(runner, job_id)).detail()

    recovered = asyncio.run(run(Flaky(["[Add carefully.]"], failures=5), retry_s=5))
    assert recovered["status"] == "completed", recovered["error"]
    assert recovered["best"]["instruction"] == "Add carefully."

    down = asyncio.run(run(Flaky([], failures=10**6), retry_s=0.1))
    assert down["status"] == "failed"
    assert "still loading" in down["error"]


def test_a_stored_job_that_cannot_be_read_back_is_marked_failed_not_resumed(store: SessionStore) -> None:
    asyncio.run(store.save_job({"job_id": "broken", "status": "running", "trajectory": []}))

    async def scenario() -> int:
        return await runner_for(ScriptedChat([]), store).resume()

    assert asyncio.run(scenario()) == 0
    stored = asyncio.run(store.get_job("broken"))
    assert stored is not None and stored["status"] == "failed" and "read back" in stored["error"]


def test_a_cancelled_job_goes_on_where_it_stopped_and_a_completed_one_does_not(store: SessionStore) -> None:
    chat = Flaky(["[Add carefully.]", "[Go carefully.]", "[Sum carefully.]"], failures=0)
    chat.hold = "Go carefully"  # step 2's answers hang until released

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        runner = runner_for(chat, store)
        job_id = (await runner.submit(task_from(task(steps=3, candidates_per_step=1))))["job_id"]
        await until(lambda: two_steps_started(runner, job_id))
        cancelled = await runner.cancel(job_id)
        answered_before = len(chat.answered)
        chat.gate.set()
        resumed = await runner.restart(job_id)
        assert resumed["status"] == "queued" and resumed["resumed"] == 1 and resumed["error"] is None
        done = (await finished(runner, job_id)).detail()
        with pytest.raises(Conflict):
            await runner.restart(job_id)
        return cancelled, done, len(chat.answered) - answered_before

    cancelled, done, answered_after = asyncio.run(scenario())
    assert cancelled["status"] == "cancelled" and [e["step"] for e in cancelled["trajectory"]] == [0, 1]
    assert done["status"] == "completed", done["error"]
    assert done["trajectory"][:2] == cancelled["trajectory"]  # kept, not scored again
    assert [e["step"] for e in done["trajectory"]] == [0, 1, 2, 3]
    # After the resume: "Go carefully." and "Sum carefully." on 2 train examples, then start and best on test.
    assert answered_after == 2 * 2 + 2 * 2
    assert not next(chat.proposals, None)  # step 2's stored proposal was used, not asked for again


def test_a_job_that_failed_while_the_llm_was_down_goes_on_once_it_is_back(store: SessionStore) -> None:
    chat = Flaky(["[Add carefully.]"], failures=10**6)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        runner = runner_for(chat, store, Settings(optimize_retry_s=0.05))
        runner.loop.first_retry_delay_s = 0.01
        job_id = (await runner.submit(task_from(task(steps=1, candidates_per_step=1))))["job_id"]
        failed = (await finished(runner, job_id)).detail()
        chat.failures = 0
        await runner.restart(job_id)
        return failed, (await finished(runner, job_id)).detail()

    failed, done = asyncio.run(scenario())
    assert failed["status"] == "failed" and "still loading" in failed["error"]
    assert done["status"] == "completed" and done["error"] is None and done["resumed"] == 1
    assert done["best"]["instruction"] == "Add carefully."


async def two_steps_started(runner: JobRunner, job_id: str) -> bool:
    job = await runner.get(job_id)
    return job.current is not None and job.current["step"] == 2


def test_a_job_leased_to_one_replica_is_not_run_by_another_until_its_lease_expires(tmp_path: Path) -> None:
    first_store, second_store = SessionStore.open(None, str(tmp_path)), SessionStore.open(None, str(tmp_path))
    first, second = ScriptedChat(["[Add carefully.]"] * 100), ScriptedChat(["[Sum carefully.]"] * 100)
    first.hold = second.hold = "carefully"  # answers hang: the job stays in step 1 until released

    async def scenario() -> tuple[int, int, dict[str, Any]]:
        lease = Settings(job_lease_s=1.0)
        owner, other = runner_for(first, first_store, lease), runner_for(second, second_store, lease)
        job_id = (await owner.submit(task_from(task(steps=1, candidates_per_step=1))))["job_id"]
        await until(lambda: has_current(owner, job_id))
        taken_while_leased = await other.resume()
        await asyncio.sleep(1.1)  # ``owner`` never renews (no keeper runs): its lease expires
        taken_after_expiry = await other.resume()
        second.gate.set()
        done = (await finished(other, job_id)).detail()
        first.gate.set()  # the first replica's answers come back late; its write is refused and it stops
        await until(lambda: asyncio.sleep(0, result=job_id not in owner.running))
        stored = await second_store.get_job(job_id)
        assert stored is not None and stored["status"] == "completed"
        return taken_while_leased, taken_after_expiry, done

    try:
        taken_while_leased, taken_after_expiry, done = asyncio.run(scenario())
    finally:
        first_store.close()
        second_store.close()
    assert taken_while_leased == 0 and taken_after_expiry == 1
    assert done["status"] == "completed" and done["resumed"] == 1
    assert not second.meta_prompts  # the stored proposals of step 1 were used, not asked for again


def test_cancel_on_another_replica_stops_the_job_where_it_runs(tmp_path: Path) -> None:
    first_store, second_store = SessionStore.open(None, str(tmp_path)), SessionStore.open(None, str(tmp_path))
    chat = ScriptedChat(["[Add carefully.]"] * 100)
    chat.hold = "carefully"

    async def scenario() -> tuple[dict[str, Any], dict[str, Any] | None, bool]:
        owner, other = runner_for(chat, first_store), runner_for(ScriptedChat([]), second_store)
        job_id = (await owner.submit(task_from(task(steps=3, candidates_per_step=1))))["job_id"]
        await until(lambda: has_current(owner, job_id))
        cancelled = await other.cancel(job_id)
        chat.gate.set()  # the running replica's answers arrive after the cancel
        await until(lambda: asyncio.sleep(0, result=job_id not in owner.running))
        return cancelled, await first_store.get_job(job_id), job_id in owner.running

    try:
        cancelled, stored, still_running = asyncio.run(scenario())
    finally:
        first_store.close()
        second_store.close()
    assert cancelled["status"] == "cancelled"
    assert stored is not None and stored["status"] == "cancelled" and not still_running
