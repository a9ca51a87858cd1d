"""OPRO optimisation jobs: the loop of ``opro/loop.py``, run in the background and checkpointed in the store.

The job document is saved after every scored instruction, so a restart loses at most the instructions
being scored at that moment; ``resume`` picks every unfinished job up again where it stopped.

With several replicas on one database, a job runs on the replica that holds its lease. The lease is
renewed every third of ``job_lease_s``; a replica that dies stops renewing, and once its lease has
expired another replica takes the job over where it was last saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from opro.backends.base import ChatBackend
from opro.config import Settings
from opro.job import UNFINISHED, Job, JobStatus, LeaseLost
from opro.loop import OproLoop
from opro.store import SessionStore
from opro.tasks import TaskSpec
from services.errors import (
    BadRequest,
    Conflict,
    LingxiError,
    NotFound,
    NotReady,
    TooManyRequests,
)

log = logging.getLogger("opro.jobs")


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        chat: ChatBackend,
        store: SessionStore,
        default_model: Callable[[], Awaitable[str | None]],
        models: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.default_model = default_model
        self.models = models
        self.loop = OproLoop(settings, chat, self.save)
        self.running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self.save_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.keeper: asyncio.Task[None] | None = None

    # --- the API -----------------------------------------------------------------------------
    async def submit(self, spec: TaskSpec) -> dict[str, Any]:
        spec.check(self.settings.optimize_max_examples)
        self.check_capacity()
        job = Job.new(spec, await self.resolve_models(spec))
        await self.write(job.job_id, job.to_dict())
        await self.claim(job.job_id)
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
        # Held while "cancelled" is written: a replica that runs the job stops at its next write,
        # and none can take it over in between.
        await self.store.claim_job(job_id, self.owner, self.settings.job_lease_s, steal=True)
        try:
            job = await self.get(job_id)  # as its last checkpoint left it
            if job.status in UNFINISHED:
                job.status = JobStatus.cancelled.value  # ``current`` stays: a restart scores those proposals
                job.finished_at = job.updated_at = time.time()
                await self.write(job_id, job.to_dict())
        finally:
            await self.release(job_id)
        return job.detail()

    async def restart(self, job_id: str) -> dict[str, Any]:
        """Go on with a failed or cancelled job where it stopped (an unfinished one is answered as is)."""
        job = await self.get(job_id)
        if job.status in UNFINISHED:
            return job.detail()
        if job.status == JobStatus.completed.value:
            raise Conflict("the job has completed; start a new one (with more steps) to optimise further")
        self.check_capacity()
        if job_id in self.running:  # it has just ended: its task gives up the lease as it finishes
            await asyncio.gather(self.running[job_id][1], return_exceptions=True)
        await self.claim(job_id)
        job.status, job.error, job.finished_at = JobStatus.queued.value, None, None
        job.resumed += 1
        await self.write(job_id, job.to_dict())
        self.start(job)
        return job.detail()

    async def resume(self) -> int:
        """Start every unfinished job in the store that no live replica holds; returns how many."""
        started = 0
        for data in await self.store.jobs(UNFINISHED):
            if data["job_id"] in self.running:
                continue
            if not await self.store.claim_job(data["job_id"], self.owner, self.settings.job_lease_s):
                continue  # another replica runs it
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

    async def begin(self) -> int:
        """At start-up: resume what no replica holds, then keep the leases (returns how many resumed)."""
        self.keeper = asyncio.create_task(self.keep_leases(), name="opro-job-leases")
        return await self.resume()

    async def keep_leases(self) -> None:
        """Renew this replica's leases; stop a job another replica now holds; take over the unfinished
        jobs of replicas that have gone (their leases expired)."""
        while True:
            await asyncio.sleep(self.settings.job_lease_s / 3)
            try:
                for job_id, (_, task) in list(self.running.items()):
                    if not await self.store.renew_job(job_id, self.owner, self.settings.job_lease_s):
                        log.warning("optimisation job %s is held by another replica now; stopping it here", job_id)
                        task.cancel()
                if resumed := await self.resume():
                    log.info("took over %d optimisation job(s) whose replica stopped renewing them", resumed)
            except LingxiError as exc:  # the database is down: the jobs go on, leases are renewed later
                log.warning("could not renew optimisation job leases: %s", exc.message)

    async def shutdown(self) -> None:
        """Stop the jobs without marking them and give up their leases: they stay unfinished, and
        resume on the next start or on another replica."""
        tasks = [task for _, task in self.running.values()]
        if self.keeper is not None:
            tasks.append(self.keeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- persistence -------------------------------------------------------------------------
    async def write(self, job_id: str, data: dict[str, Any], fenced: bool = False) -> bool:
        async with self.save_locks[job_id]:  # writes of one job land in the order they were made
            return await self.store.save_job(data, self.owner if fenced else None)

    async def save(self, job: Job) -> None:
        """The running job's checkpoint, written only while this replica holds the job."""
        job.updated_at = time.time()
        # Shielded: a cancelled job still finishes its last write, before cancel() writes "cancelled".
        if not await asyncio.shield(self.write(job.job_id, job.to_dict(), fenced=True)):
            raise LeaseLost(job.job_id)

    async def claim(self, job_id: str) -> None:
        if not await self.store.claim_job(job_id, self.owner, self.settings.job_lease_s):
            raise Conflict("the job is held by another replica")

    async def release(self, job_id: str) -> None:
        async with self.save_locks[job_id]:  # after the job's last write
            await self.store.release_job(job_id, self.owner)

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
            await self.loop.optimize(job)
            job.phase = "testing"
            await self.save(job)
            await self.loop.test(job)
            job.status, job.phase, job.finished_at = JobStatus.completed.value, "done", time.time()
            await self.save(job)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("optimisation job %s is held by another replica now; stopped here", job.job_id)
        except Exception as exc:
            if isinstance(exc, LingxiError):
                job.error = exc.message
            else:
                log.exception("optimisation job %s failed", job.job_id)
                job.error = f"internal error: {type(exc).__name__}"
            job.status, job.finished_at = JobStatus.failed.value, time.time()
            with contextlib.suppress(LeaseLost):
                await self.save(job)
        finally:
            with contextlib.suppress(LingxiError):  # an unreleased lease only expires
                await self.release(job.job_id)
