"""NDJSON and SSE responses.

Everything is validated before the first byte. After headers are sent an error can only travel
in-band: one ``{"error": ...}`` line (Ollama's convention), then the stream ends cleanly. When the
client goes away Starlette cancels the response, which closes the event iterator: engines put their
clean-up (cancel generation, close the upstream request) in ``finally``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from services.errors import LingxiError

log = logging.getLogger("lingxi")


def json_line(event: Any) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode()


def in_band_error(exc: BaseException) -> str:
    if isinstance(exc, LingxiError):
        return exc.message
    log.error("stream failed", exc_info=exc)
    return "internal error while streaming"


async def _ndjson(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield json_line(event)
    except Exception as exc:  # after headers an error can only be reported in-band
        yield json_line({"error": in_band_error(exc)})
    finally:
        await _close(events)


async def _sse(events: AsyncIterator[Any], done: bool) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            payload = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
            yield f"data: {payload}\n\n".encode()
        if done:
            yield b"data: [DONE]\n\n"
    except Exception as exc:
        error = {"error": {"message": in_band_error(exc), "type": "stream_error"}}
        yield f"data: {json.dumps(error, ensure_ascii=False)}\n\n".encode()
    finally:
        await _close(events)


async def _close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def ndjson_response(events: AsyncIterator[Any], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(_ndjson(events), media_type="application/x-ndjson", headers=headers)


def sse_response(events: AsyncIterator[Any], *, done: bool = True) -> StreamingResponse:
    """Server-sent events; ``done`` ends with OpenAI's ``data: [DONE]``."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse(events, done), media_type="text/event-stream", headers=headers)


async def text_chunks(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """Plain-text streaming (vlm's describe_image_stream); an error ends with a bracketed note."""
    try:
        async for chunk in chunks:
            yield chunk.encode()
    except Exception as exc:
        yield f"\n[error: {in_band_error(exc)}]".encode()
    finally:
        await _close(chunks)
