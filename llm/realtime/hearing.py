"""Hearing a turn: its speech streamed to the asr service's ``WS /asr/ws`` while it is spoken, or
its committed audio sent to ``/v1/audio/transcriptions``; the transcription events.

The asr service drafts a phrase (its quick pass) as soon as a short pause closes it, often before
the server VAD's longer silence has ended the turn; the answer starts from that draft, and the full
pass's text, which follows, becomes the item's transcript. With an asr engine that does not draft,
its one pass is used the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from llm.realtime import speech
from llm.realtime.session import RATE
from llm.siblings import Siblings
from services.errors import LingxiError, UpstreamError

COVER_MARGIN_S = 0.3  # a pass ending this close to the end of speech covers it (the two VADs differ a little)


class LiveTranscript:
    def __init__(self, siblings: Siblings, settings: dict[str, Any]) -> None:
        sibling = siblings.asr
        self.url = sibling.base_url().replace("http", "ws", 1) + "/asr/ws"
        self.headers = {"Authorization": f"Bearer {sibling.api_key}"} if sibling.api_key else {}
        self.start = {"sample_rate": RATE, "format": "pcm_s16le", "language": settings.get("language")}
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.speech_end_s = 0.0  # where the speech ended, in seconds into the stream (known when it has)
        self.task = asyncio.create_task(self.run())

    def send(self, pcm: bytes) -> None:
        self.frames.put_nowait(pcm)

    def end(self) -> None:
        self.frames.put_nowait(None)

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
                    return str(message.get("partial_text") or "")
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
            try:
                quick = await live.quick(live.speech_end_s)
                item["content"][0]["transcript"] = quick
                heard.set_result(None)
                await emit({"type": "conversation.item.input_audio_transcription.delta", **where, "delta": quick})
                text = await live.full()
            except (LingxiError, OSError, websockets.WebSocketException, ValueError, KeyError):
                live.cancel()
                live = None
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
