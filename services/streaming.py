"""NDJSON and SSE responses.

Everything is validated before the first byte. After headers are sent an error can only travel
in-band: one ``{"error": ...}`` line (Ollama's convention), then the stream ends cleanly. When the
client goes away Starlette cancels the response, which closes the event iterator: engines put their
clean-up (cancel generation, close the upstream request) in ``finally``.

When the process stops (SIGTERM, Ctrl-C) the streams still open at the end of their grace get the
in-band error ``the service is shutting down`` rather than a cut connection (see ``Shutdown``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from services.errors import LingxiError, NotReady

log = logging.getLogger("lingxi")

SHUTTING_DOWN = "the service is shutting down"


class OpenStream:
    """One response stream, as ``Shutdown`` sees it: where it is, and how to end it."""

    def __init__(self, task: asyncio.Task[Any] | None, ending: bool) -> None:
        self.task = task
        self.ending = ending  # end before the next event
        self.waiting = False  # awaiting the engine's next event (rather than sending one)
        self.interrupted = False  # that wait was cancelled by ``end``

    def end(self) -> None:
        self.ending = True
        if self.waiting and self.task is not None:
            self.interrupted = True
            self.task.cancel()


class Shutdown:
    """The process's stop, for its streams: ``begin`` (from the server's signal handler) ends every
    stream still open ``after_s`` later with an in-band error, cancelling a wait for the engine's
    next event (engines clean up in ``finally``, as when a client goes away)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.streams: set[OpenStream] = set()
        self.ended = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the server runs its requests on."""
        self.loop = loop

    def begin(self, after_s: float) -> None:
        loop = self.loop
        if loop is not None:  # safe from a signal handler: call_soon_threadsafe only writes to the loop's pipe
            loop.call_soon_threadsafe(loop.call_later, after_s, self.end_streams)

    def end_streams(self) -> None:
        self.ended = True
        for stream in list(self.streams):
            stream.end()


SHUTDOWN = Shutdown()


async def until_shutdown(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``events``, until ``SHUTDOWN`` ends the open streams: then ``NotReady(SHUTTING_DOWN)``."""
    task = asyncio.current_task()
    stream = OpenStream(task, SHUTDOWN.ended)
    SHUTDOWN.streams.add(stream)
    try:
        while not stream.ending:
            stream.waiting = True
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not stream.interrupted:
                    raise  # the client went away, or the server gave up waiting
            finally:
                stream.waiting = False
            if stream.interrupted:
                uncancel = getattr(task, "uncancel", None)  # Python 3.11+: the cancel is handled here
                if uncancel is not None:
                    uncancel()
                break
            yield event
        raise NotReady(SHUTTING_DOWN)
    finally:
        SHUTDOWN.streams.discard(stream)


def json_line(event: Any) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode()


def in_band_error(exc: BaseException) -> str:
    if isinstance(exc, LingxiError):
        return exc.message
    log.error("stream failed", exc_info=exc)
    return "internal error while streaming"


async def _ndjson(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    guarded = until_shutdown(events)
    try:
        async for event in guarded:
            yield json_line(event)
    except Exception as exc:  # after headers an error can only be reported in-band
        yield json_line({"error": in_band_error(exc)})
    finally:
        await _close(guarded, events)


async def _sse(events: AsyncIterator[Any], done: bool) -> AsyncIterator[bytes]:
    guarded = until_shutdown(events)
    try:
        async for event in guarded:
            if isinstance(event, bytes):  # events framed already (a relayed upstream's)
                yield event
                continue
            payload = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
            yield f"data: {payload}\n\n".encode()
        if done:
            yield b"data: [DONE]\n\n"
    except Exception as exc:
        error = {"error": {"message": in_band_error(exc), "type": "stream_error"}}
        yield f"data: {json.dumps(error, ensure_ascii=False)}\n\n".encode()
    finally:
        await _close(guarded, events)


async def _close(*iterators: AsyncIterator[Any]) -> None:
    for iterator in iterators:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def ndjson_response(events: AsyncIterator[Any], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(_ndjson(events), media_type="application/x-ndjson", headers=headers)


def sse_response(events: AsyncIterator[Any], *, done: bool = True) -> StreamingResponse:
    """Server-sent events, each a JSON object, its text, or bytes framed already (``data: ...\\n\\n``,
    one or more events); ``done`` ends with OpenAI's ``data: [DONE]``."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse(events, done), media_type="text/event-stream", headers=headers)


async def text_chunks(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """Plain-text streaming (vlm's describe_image_stream); an error ends with a bracketed note."""
    guarded = until_shutdown(chunks)
    try:
        async for chunk in guarded:
            yield chunk.encode()
    except Exception as exc:
        yield f"\n[error: {in_band_error(exc)}]".encode()
    finally:
        await _close(guarded, chunks)
