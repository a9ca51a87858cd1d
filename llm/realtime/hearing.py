"""Hearing a turn: its speech streamed to the asr service's ``WS /asr/ws`` while it is spoken, or
its committed audio sent to ``/v1/audio/transcriptions``; the transcription events.

The asr service drafts a phrase (its quick pass) as soon as a short pause closes it, often before
the server VAD's longer silence has ended the turn; the answer starts from that draft, and the full
pass's text, which follows, becomes the item's transcript. The full pass (``full_pass: "at_end"``)
waits until the answers in progress, of every session, have sent their first output: on a small CPU
it would otherwise take the cores the answers need. With an asr engine that does not draft, its one
pass is used the same way.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from llm.realtime import speech
from llm.realtime.session import RATE
from llm.siblings import Siblings
from services.errors import LingxiError, UpstreamError

COVER_MARGIN_S = 0.3  # a pass ending this close to the end of speech covers it (the two VADs differ a little)
QUICK_WAIT_S = 3.0  # no draft by then (asr heard no phrase in the turn): the full pass of the whole turn decides
MAX_HOLD_S = 20.0  # the longest a full pass waits for answers in progress


class AnswersFirst:
    """Responses on their way to their first output: full transcriptions wait until there are none."""

    def __init__(self) -> None:
        self.pending = 0
        self.quiet = asyncio.Event()
        self.quiet.set()

    def begin(self) -> Callable[[], None]:
        """Count a response in; the function returned counts it out (once, however often it is called)."""
        self.pending += 1
        self.quiet.clear()
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self.pending -= 1
                if self.pending == 0:
                    self.quiet.set()

        return end

    async def wait(self, most_s: float = MAX_HOLD_S) -> None:
        try:
            await asyncio.wait_for(self.quiet.wait(), most_s)
        except asyncio.TimeoutError:
            pass


GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AnswersFirst] = weakref.WeakKeyDictionary()


def answers_first() -> AnswersFirst:
    """The running event loop's (the service's) count of answers in progress."""
    loop = asyncio.get_running_loop()
    if loop not in GATES:
        GATES[loop] = AnswersFirst()
    return GATES[loop]


class LiveTranscript:
    def __init__(self, siblings: Siblings, settings: dict[str, Any]) -> None:
        sibling = siblings.asr
        self.url = sibling.base_url().replace("http", "ws", 1) + "/asr/ws"
        self.headers = {"Authorization": f"Bearer {sibling.api_key}"} if sibling.api_key else {}
        self.start = {
            "sample_rate": RATE,
            "format": "pcm_s16le",
            "language": settings.get("language"),
            "full_pass": "at_end",
        }
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.released = asyncio.Event()  # the end of the stream may go to asr: its full pass may start
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.speech_end_s = 0.0  # where the speech ended, in seconds into the stream (known when it has)
        self.task = asyncio.create_task(self.run())

    def send(self, pcm: bytes) -> None:
        self.frames.put_nowait(pcm)

    def end(self) -> None:
        """The speech has ended: no more frames (the end goes to asr once ``release`` is called)."""
        self.frames.put_nowait(None)

    def release(self) -> None:
        self.released.set()

    def cancel(self) -> None:
        self.task.cancel()

    async def run(self) -> None:
        try:
            async with websockets.connect(self.url, additional_headers=self.headers, max_size=None) as socket:
                await socket.send(json.dumps(self.start))
                reader = asyncio.create_task(self.read(socket))
                try:
                    while (frame := await self.frames.get()) is not None:
                        await socket.send(frame)
                    await self.released.wait()
                    await socket.send(json.dumps({"event": "end"}))
                    await reader
                finally:
                    reader.cancel()
        finally:
            self.changed.set()

    async def read(self, socket: Any) -> None:
        async for raw in socket:
            message = json.loads(raw)
            if message.get("type") == "error":
                raise UpstreamError(f"the asr service: {(message.get('error') or {}).get('message')}")
            self.messages.append(message)
            self.changed.set()
            if message.get("type") == "final":
                return

    async def quick(self, speech_end_s: float) -> str:
        """The text of the speech up to ``speech_end_s`` (into the stream) as soon as a pass covers it."""
        while True:
            self.changed.clear()
            for message in reversed(self.messages):
                if message["type"] == "final":
                    return str(message.get("text") or "")
                if message["type"] in ("draft", "partial") and message["end"] >= speech_end_s - COVER_MARGIN_S:
                    if message.get("partial_text"):
                        return str(message["partial_text"])
                    self.release()  # asr drafted nothing: the full pass of the whole turn decides
                    break
            if self.task.done():
                self.task.result()
                raise UpstreamError("the asr service closed the live transcription before its final text")
            await self.changed.wait()

    async def full(self) -> str:
        """The full pass's text of the whole turn."""
        await self.task
        final = next((m for m in self.messages if m["type"] == "final"), None)
        if final is None:
            raise UpstreamError("the asr service closed the live transcription before its final text")
        return str(final.get("text") or "").strip()


async def hear(
    siblings: Siblings,
    settings: dict[str, Any],
    emit: Callable[[dict[str, Any]], Awaitable[None]],
    item: dict[str, Any],
    pcm: bytes,
    heard: asyncio.Future[None],
    live: LiveTranscript | None,
) -> None:
    """The user item's transcript, sent as transcription events. With ``live``: its quick text first
    (``heard`` is then set: the answer may start from it), then the full pass's; without, or when the
    live socket fails: asr's transcription of the committed audio ``pcm``."""
    where = {"item_id": item["id"], "content_index": 0}
    try:
        if live is not None:
            stream = live
            try:
                quick = await quick_text(live)
                item["content"][0]["transcript"] = quick
                heard.set_result(None)
                await emit({"type": "conversation.item.input_audio_transcription.delta", **where, "delta": quick})
                await answers_first().wait()
                live.release()
                text = await live.full()
            except (LingxiError, OSError, websockets.WebSocketException, ValueError, KeyError):
                live = None
            finally:
                stream.cancel()  # done by now, unless this failed or was cancelled
        if live is None:
            text, _ = await speech.transcribe(siblings, pcm, settings)
    except LingxiError as exc:
        item["content"][0]["transcript"] = ""
        error = {"type": "transcription_error", "code": exc.error_type, "message": exc.message, "param": None}
        await emit({"type": "conversation.item.input_audio_transcription.failed", **where, "error": error})
        return
    finally:
        if not heard.done():
            heard.set_result(None)
    first = item["content"][0]["transcript"] is None
    item["content"][0]["transcript"] = text
    if first:
        await emit({"type": "conversation.item.input_audio_transcription.delta", **where, "delta": text})
    usage = {"type": "duration", "seconds": round(len(pcm) / 48_000, 3)}
    completed = {"type": "conversation.item.input_audio_transcription.completed", **where, "transcript": text}
    await emit({**completed, "usage": usage})
    await emit({"type": "conversation.item.done", "item": item})


async def quick_text(live: LiveTranscript) -> str:
    """The draft that covers the speech; without one in ``QUICK_WAIT_S``, the full pass's text."""
    quick = asyncio.ensure_future(live.quick(live.speech_end_s))
    try:
        done, _ = await asyncio.wait({quick}, timeout=QUICK_WAIT_S)
    except asyncio.CancelledError:
        quick.cancel()
        raise
    if not done:
        live.release()
    return await quick
