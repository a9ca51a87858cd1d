"""opro routes: the seed's API in the ``{code, msg, data}`` envelope (the web pages are in ``opro.pages``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import UploadFile

from opro.envelope import ok
from opro.jobs import JobRunner
from opro.optimizer import Optimizer
from opro.schemas import MessageBody, QueryBody, RejectBody, SelectBody, SessionBody, SetModelBody
from opro.tasks import TaskSpec, parse_examples_file, task_from
from services.app import app_state
from services.errors import BadRequest, UnsupportedMediaType

OptimizerDep = Annotated[Optimizer, app_state("optimizer")]
JobsDep = Annotated[JobRunner, app_state("jobs")]
router = APIRouter()


@router.get("/models")
async def models(optimizer: OptimizerDep) -> JSONResponse:
    return ok({"models": await optimizer.models(fresh=True)})


@router.post("/set_model")
async def set_model(body: SetModelBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.set_model(body.session_id, body.model_name))


@router.post("/query")
async def query(body: QueryBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.query(body.query))


@router.post("/query_from_message")
async def query_from_message(body: SessionBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.query_from_message(body.session_id))


@router.post("/select")
async def select(body: SelectBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.select(body.session_id, body.choice))


@router.post("/reject")
async def reject(body: RejectBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.reject(body.session_id, body.candidate, body.reason))


@router.post("/answer")
async def answer(body: QueryBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.answer(body.query))


@router.post("/next")
async def next_round(body: SessionBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.next(body.session_id))


@router.post("/message")
async def message(body: MessageBody, optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.message(body.session_id, body.message))


@router.get("/sessions")
async def sessions(optimizer: OptimizerDep) -> JSONResponse:
    return ok(await optimizer.sessions())


@router.get("/session/{sid}")
async def session(sid: str, optimizer: OptimizerDep) -> JSONResponse:
    if not sid.strip():
        raise BadRequest("session id must not be empty")
    return ok(await optimizer.session(sid))


@router.post("/optimize", status_code=202)
async def optimize(request: Request, jobs: JobsDep) -> JSONResponse:
    """Start an OPRO job: a JSON task, or form fields with the examples as an uploaded ``file``."""
    job = await jobs.submit(await read_task(request))
    return ok(job, status_code=202)


@router.get("/optimize")
async def optimize_jobs(jobs: JobsDep) -> JSONResponse:
    return ok({"jobs": await jobs.summaries()})


@router.get("/optimize/{job_id}")
async def optimize_job(job_id: str, jobs: JobsDep) -> JSONResponse:
    return ok((await jobs.get(job_id)).detail())


@router.post("/optimize/{job_id}/resume", status_code=202)
async def resume_optimize_job(job_id: str, jobs: JobsDep) -> JSONResponse:
    return ok(await jobs.restart(job_id), status_code=202)


@router.delete("/optimize/{job_id}")
async def cancel_optimize_job(job_id: str, jobs: JobsDep) -> JSONResponse:
    return ok(await jobs.cancel(job_id))


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


async def read_task(request: Request) -> TaskSpec:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        fields: dict[str, Any] = {key: value for key, value in form.items() if key != "file"}
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            fields["examples"] = parse_examples_file(upload.filename or "", await upload.read())
        elif isinstance(fields.get("examples"), str):  # examples pasted as JSON text in a form field
            fields["examples"] = parse_examples_file("examples.json", str(fields["examples"]).encode())
        return task_from(fields)
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaType("send the task as application/json, or as multipart/form-data with a file")
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the task must be a JSON object with examples")
    return task_from(body)
