"""A session's input audio: the buffer the client appends to, the server VAD's turns over it, and
each committed turn's transcription (a task, so that the socket is read on while asr hears it)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any

from llm.realtime import hearing
from llm.realtime.audio import InputBuffer, ServerVad, Turn, load_vad_model, ms_of
from llm.realtime.events import EventError, message_item, new_id
from llm.realtime.formats import AudioIn
from llm.realtime.hearing import LiveTranscript
from services.errors import LingxiError

if TYPE_CHECKING:
    from llm.realtime.connection import Connection

MIN_COMMIT_MS = 100
TAIL_MS = 300  # audio kept after the end of speech for the transcription (its last sounds may be quiet)


class Turns:
    def __init__(self, connection: Connection, max_buffer_s: float) -> None:
        self.connection = connection
        self.buffer = InputBuffer(int(max_buffer_s * 1000))
        self.decode = AudioIn(connection.config.input_format)  # the client's audio as PCM16 24 kHz
        self.vad: ServerVad | None = None
        self.speech_item: str | None = None  # the item the speech heard now becomes
        self.speech_start_ms = 0
        self.transcriptions: set[asyncio.Task[None]] = set()
        self.heard: set[asyncio.Future[None]] = set()  # a committed turn's text is there to answer from
        self.live: LiveTranscript | None = None  # the speech heard now, streamed to asr
        self.live_start_ms = 0

    def end(self) -> list[asyncio.Task[None]]:
        """Stop hearing; the transcription tasks still running, cancelled (for the caller to await)."""
        if self.live is not None:
            self.live.cancel()
        tasks = list(self.transcriptions)
        for task in tasks:
            task.cancel()
        return tasks

    async def set_vad(self) -> None:
        settings = self.connection.config.turn_detection
        if settings is None:
            self.vad = None
            return
        model = await asyncio.to_thread(load_vad_model)
        self.vad = ServerVad(model, settings)

    async def detection_changed(self) -> None:
        if self.live is not None:  # the speech heard so far is not a turn any more
            self.live.cancel()
            self.live = None
        await self.set_vad()

    # --- the client's events ----------------------------------------------------------------
    async def append(self, event: dict[str, Any]) -> None:
        try:
            pcm = self.decode(base64.b64decode(event.get("audio") or "", validate=True))
        except (binascii.Error, TypeError, ValueError):
            raise EventError(f"audio must be base64 {self.decode.fmt} audio", param="audio") from None
        if not self.buffer.room(len(pcm)) and self.vad is not None and self.vad.speaking:
            self.vad.speaking = False  # a turn as long as the buffer ends here: it is committed, the rest is heard anew
            await self.turn(Turn("stopped", self.buffer.end_ms))
        if not self.buffer.room(len(pcm)):
            limit = self.buffer.max_ms // 1000
            raise EventError(
                f"the input audio buffer holds at most {limit} s; commit or clear it",
                code="input_audio_buffer_full",
                param="audio",
            )
        self.buffer.append(pcm)
        if self.vad is None:
            return
        if self.live is not None:
            self.live.send(pcm)
        for turn in self.vad.feed(pcm):
            await self.turn(turn)
        if not self.vad.speaking:
            settings = self.connection.config.turn_detection
            assert settings is not None
            self.buffer.keep_last(int(settings["prefix_padding_ms"]) + TAIL_MS)

    async def commit(self, event: dict[str, Any]) -> None:
        if ms_of(len(self.buffer.data)) < MIN_COMMIT_MS:
            raise EventError(
                f"buffer too small: at least {MIN_COMMIT_MS} ms of audio must be committed, "
                f"it holds {ms_of(len(self.buffer.data))} ms",
                code="input_audio_buffer_commit_empty",
            )
        await self.committed(self.buffer.take(), new_id("item"), respond=False)

    async def clear(self, event: dict[str, Any]) -> None:
        self.buffer.drop()
        await self.connection.emit({"type": "input_audio_buffer.cleared"})

    # --- turns --------------------------------------------------------------------------------
    async def turn(self, turn: Turn) -> None:
        connection = self.connection
        settings = connection.config.turn_detection
        assert settings is not None
        if turn.kind == "started":
            self.speech_item, self.speech_start_ms = new_id("item"), turn.at_ms
            self.start_live(max(self.buffer.start_ms, turn.at_ms - int(settings["prefix_padding_ms"])))
            await connection.emit(
                {"type": "input_audio_buffer.speech_started", "audio_start_ms": turn.at_ms, "item_id": self.speech_item}
            )
            if settings["interrupt_response"] and connection.response_task is not None:
                await connection.cancel_response("turn_detected")
            return
        item_id = self.speech_item or new_id("item")
        await connection.emit(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": turn.at_ms, "item_id": item_id}
        )
        start = max(0, self.speech_start_ms - int(settings["prefix_padding_ms"]))
        pcm = self.buffer.take(start, turn.at_ms + TAIL_MS)
        live, self.live = self.live, None
        if live is not None:
            live.end()
            live.speech_end_s = (turn.at_ms - self.live_start_ms) / 1000
        await self.committed(pcm, item_id, respond=bool(settings["create_response"]), live=live)

    def start_live(self, start_ms: int) -> None:
        """Stream the turn's speech, from ``start_ms`` on, to asr as it comes (see ``LiveTranscript``)."""
        if self.live is not None:
            self.live.cancel()
        try:
            self.live = LiveTranscript(self.connection.siblings, self.connection.config.transcription)
        except LingxiError:  # asr is not configured: the committed turn's transcription says so
            self.live = None
            return
        self.live_start_ms = start_ms
        self.live.send(self.buffer.since(start_ms))

    async def committed(self, pcm: bytes, item_id: str, *, respond: bool, live: LiveTranscript | None = None) -> None:
        """The turn's audio becomes a user item; it is transcribed, then answered when ``respond``."""
        connection, emit = self.connection, self.connection.emit
        item = message_item("user", [{"type": "input_audio", "transcript": None}], item_id=item_id)
        previous = connection.conversation.add(item)
        await emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        await emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        heard = asyncio.get_running_loop().create_future()
        self.heard.add(heard)
        heard.add_done_callback(self.heard.discard)
        settings = connection.config.transcription
        task = asyncio.create_task(hearing.hear(connection.siblings, settings, emit, item, pcm, heard, live))
        self.transcriptions.add(task)
        task.add_done_callback(self.transcriptions.discard)
        if respond and connection.config.intent == "realtime" and connection.response_task is None:
            await connection.start_response(connection.config)

    async def transcribed(self) -> None:
        """Wait until the turns committed have their text (a quick draft, at least): the answer reads it."""
        if self.heard:
            await asyncio.gather(*list(self.heard), return_exceptions=True)
