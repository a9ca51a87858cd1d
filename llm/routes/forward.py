"""OpenAI's embeddings, rerank and audio routes, forwarded to the sibling services that serve them.

The request body is streamed to the sibling as it arrives and the answer streamed back with the
sibling's status and headers, so neither a large upload nor a long audio answer is held in memory.
The sibling's own errors (OpenAI-shaped, like every lingxi service's) pass through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from llm.routes.common import SiblingsDep
from llm.siblings import Sibling, Siblings

log = logging.getLogger("lingxi.llm")

# (method, path, sibling): the path is the same on the llm and on the sibling
FORWARDED = (
    ("POST", "/v1/embeddings", "embedding"),
    ("POST", "/v1/rerank", "embedding"),
    ("POST", "/v1/audio/transcriptions", "asr"),
    ("POST", "/v1/audio/translations", "asr"),
    ("POST", "/v1/audio/speech", "tts"),
    ("GET", "/v1/audio/voices", "tts"),
    ("GET", "/v1/audio/models", "tts"),
)
SENT_ON = ("content-type", "content-length", "accept", "accept-encoding", "user-agent")
SENT_BACK = (
    "content-type",
    "content-length",
    "content-encoding",
    "content-disposition",
    "cache-control",
    "retry-after",
    "x-accel-buffering",
)


async def forward(request: Request, hub: Siblings, sibling: Sibling, path: str) -> StreamingResponse:
    headers = {name: request.headers[name] for name in SENT_ON if name in request.headers}
    headers.setdefault("accept-encoding", "identity")  # the bytes go back as they are: no encoding unasked for
    headers["x-request-id"] = getattr(request.state, "request_id", "")  # one id across both services' logs
    body = request.stream() if request.method in ("POST", "PUT", "PATCH") else None
    upstream = await hub.open(sibling, request.method, path, headers=headers, params=request.query_params, content=body)
    kept = {name: upstream.headers[name] for name in SENT_BACK if name in upstream.headers}
    return StreamingResponse(relay(upstream, sibling), status_code=upstream.status_code, headers=kept)


async def relay(upstream: httpx.Response, sibling: Sibling) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # after the headers nothing can be said but ending the body early
        log.warning("the %s service broke off its answer: %s", sibling.name, type(exc).__name__)
    finally:
        await upstream.aclose()


def forwarder(service: str, path: str) -> Callable[[Request, Siblings], Awaitable[Response]]:
    async def endpoint(request: Request, hub: SiblingsDep) -> Response:
        return await forward(request, hub, hub.named(service), path)

    endpoint.__name__ = f"forward_{path.strip('/').replace('/', '_')}"
    return endpoint


router = APIRouter()
for method, path, service in FORWARDED:
    router.add_api_route(
        path, forwarder(service, path), methods=[method], summary=f"{method} {path}, forwarded to lingxi {service}"
    )
