"""One response: the llm's answer streamed as text, or spoken by tts clause by clause, and its calls.

Text flows from the llm into the message item as it is generated; with audio, each finished clause
goes to tts while the llm writes on, and its transcript and audio are sent together, so the item
always holds the text of the audio sent. A cancelled response (``response.cancel``, or speech that
interrupts it) keeps what was sent and ends with ``status: "cancelled"``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from llm import web_answer
from llm.engines.base import ChatRequest
from llm.models import ModelRegistry
from llm.openai_format import ThinkFilter, delta_text
from llm.realtime import speech, web
from llm.realtime.audio import ms_of
from llm.realtime.calls import Calls
from llm.realtime.conversation import Conversation
from llm.realtime.events import Event, message_item, new_id, response_object, usage, without_audio
from llm.realtime.formats import audio_out, bytes_per_ms, format_object
from llm.realtime.hearing import answers_first
from llm.realtime.session import SessionConfig
from llm.routes.common import checked
from llm.siblings import Siblings
from services.errors import LingxiError

log = logging.getLogger("lingxi.llm")
DELTA_MS = 200  # audio is sent in deltas of at most 200 ms
Emit = Callable[[Event], Awaitable[None]]


@dataclass
class Spoken:
    """An assistant audio item's clauses as sent: (text, audio end in ms), for ``conversation.item.truncate``."""

    clauses: list[tuple[str, int]] = field(default_factory=list)

    @property
    def audio_ms(self) -> int:
        return self.clauses[-1][1] if self.clauses else 0

    def heard(self, end_ms: int) -> str:
        """The transcript up to ``end_ms`` of audio (a clause cut short: its share of characters)."""
        text, start = "", 0
        for clause, end in self.clauses:
            if end <= end_ms:
                text += clause
            else:
                share = max(0.0, (end_ms - start) / max(1, end - start))
                text += clause[: int(len(clause) * share)]
                break
            start = end
        return text


class ResponseRun:
    def __init__(
        self,
        *,
        config: SessionConfig,
        conversation: Conversation,
        models: ModelRegistry,
        siblings: Siblings,
        emit: Emit,
        spoken: dict[str, Spoken],
        waits: Callable[[], Awaitable[None]],
    ) -> None:
        self.id = new_id("resp")
        self.config = config
        self.conversation = conversation
        self.models = models
        self.siblings = siblings
        self.emit = emit
        self.spoken = spoken
        self.waits = waits  # the transcriptions the answer needs
        self.output: list[dict[str, Any]] = []
        self.item: dict[str, Any] | None = None  # the message being written
        self.text = ""  # its text or transcript as sent
        self.audio = "audio" in config.modalities
        self.cancel_reason: str | None = None
        self.done = False
        self.calls = Calls(self)
        self.counts: dict[str, Any] | None = None  # the engine's token counts (OpenAI's chat usage), once sent
        self.answered = answers_first().begin()  # called at the first output: full transcriptions wait till then

    def response(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        output = [without_audio(item) for item in self.output]
        body = response_object(self.id, status, self.config.modalities, output, self.config.voice, details)
        if "audio" in body:
            body["audio"]["output"]["format"] = format_object(self.config.output_format)
        return {**body, "usage": usage(self.counts)}

    def where(self) -> dict[str, Any]:
        assert self.item is not None
        return {
            "response_id": self.id,
            "item_id": self.item["id"],
            "output_index": len(self.output) - 1,
            "content_index": 0,
        }

    async def start(self) -> None:
        await self.emit({"type": "response.created", "response": self.response("in_progress")})

    async def run(self) -> None:
        status: str = "completed"
        details: dict[str, Any] | None = None
        try:
            await self.generate()
        except asyncio.CancelledError:
            status, details = "cancelled", {"type": "cancelled", "reason": self.cancel_reason or "client_cancelled"}
        except LingxiError as exc:
            status, details = "failed", {"type": "failed", "error": {"type": exc.error_type, "code": "server_error"}}
            await self.emit(
                {
                    "type": "error",
                    "error": {
                        "type": "server_error",
                        "code": "response_failed",
                        "message": exc.message,
                        "param": None,
                        "event_id": None,
                    },
                }
            )
        except Exception:
            log.exception("realtime response %s failed", self.id)
            status, details = "failed", {"type": "failed", "error": {"type": "server_error", "code": "server_error"}}
        await self.finish(status, details)

    async def finish(self, status: str, details: dict[str, Any] | None) -> None:
        if self.done:
            return
        self.done = True
        self.answered()
        if self.item is not None and self.item["status"] == "in_progress":
            await self.close_message("completed" if status == "completed" else "incomplete")
        await self.calls.close("completed" if status == "completed" else "incomplete")
        await self.emit({"type": "response.done", "response": self.response(status, details)})

    # --- the answer ----------------------------------------------------------------------------
    async def generate(self) -> None:
        await self.waits()
        route, engine = self.models.ready(self.config.route)
        messages = self.conversation.messages(self.config.instructions)
        found = None
        if self.config.web_search_options is not None:
            count = web_answer.source_count(self.config.web_search_options)
            messages, found = await web_answer.prepare(self.siblings, messages, count)
        params = {**self.config.chat_params(), "stream_options": {"include_usage": True}}
        chat = checked(ChatRequest(model=route.engine_model, messages=messages, params=params, cache_prompt=True))
        chunks = await engine.open_stream(chat)
        if found is not None:
            chunks = web.from_the_web(chunks, found, self.siblings)
        think, calls = ThinkFilter(), self.calls
        voice = Voice(self) if self.audio else None
        try:
            async for chunk in chunks:
                self.counts = chunk.get("usage") or self.counts
                calls.feed(chunk)
                if self.item is None:  # no message is being written: a call's arguments go out as they come
                    await calls.send()
                text = think.feed(delta_text(chunk))
                if not text:
                    continue
                if self.item is None:
                    await self.open_message()
                if voice is not None:
                    voice.feed(text)
                else:
                    self.text += text
                    await self.emit({"type": "response.output_text.delta", **self.where(), "delta": text})
                    self.answered()
            if voice is not None:
                await voice.finish()
        finally:
            if voice is not None:
                voice.stop()
            await chunks.aclose()  # type: ignore[attr-defined]
        if self.item is not None:
            await self.close_message("completed")
        await calls.send()
        await calls.close("completed")

    async def open_message(self) -> None:
        part = {"type": "output_audio", "transcript": ""} if self.audio else {"type": "output_text", "text": ""}
        self.item = message_item("assistant", [], status="in_progress")
        self.output.append(self.item)
        previous = self.conversation.add(self.item)
        await self.emit(
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": len(self.output) - 1,
                "item": self.item,
            }
        )
        await self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": self.item})
        self.item["content"] = [part]
        wire = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        await self.emit({"type": "response.content_part.added", **self.where(), "part": wire})

    async def close_message(self, status: str) -> None:
        assert self.item is not None
        where = self.where()
        if self.audio:
            self.item["content"] = [{"type": "output_audio", "transcript": self.text}]
            await self.emit({"type": "response.output_audio.done", **where})
            await self.emit({"type": "response.output_audio_transcript.done", **where, "transcript": self.text})
            part = {"type": "audio", "transcript": self.text}
        else:
            self.item["content"] = [{"type": "output_text", "text": self.text}]
            await self.emit({"type": "response.output_text.done", **where, "text": self.text})
            part = {"type": "text", "text": self.text}
        await self.emit({"type": "response.content_part.done", **where, "part": part})
        self.item["status"] = status
        await self.emit(
            {
                "type": "response.output_item.done",
                "response_id": self.id,
                "output_index": where["output_index"],
                "item": self.item,
            }
        )
        await self.emit({"type": "conversation.item.done", "item": self.item})


class Voice:
    """Clauses of the answer spoken by tts one after another while the llm writes on."""

    def __init__(self, run: ResponseRun) -> None:
        self.run = run
        self.cutter = speech.ClauseCutter()
        self.clauses: asyncio.Queue[str | None] = asyncio.Queue()
        self.speaker = asyncio.create_task(self.speak_all())
        self.spoken = Spoken()

    def feed(self, text: str) -> None:
        for clause in self.cutter.feed(text):
            self.clauses.put_nowait(clause)

    async def finish(self) -> None:
        rest = self.cutter.rest()
        if rest:
            self.clauses.put_nowait(rest)
        self.clauses.put_nowait(None)
        await self.speaker

    def stop(self) -> None:
        self.speaker.cancel()

    async def speak_all(self) -> None:
        run = self.run
        while (clause := await self.clauses.get()) is not None:
            if not clause.strip():
                continue
            speakable = any(char.isalnum() for char in clause)  # not only the mark after an early first chunk
            pcm = await speech.speak(run.siblings, clause.strip(), run.config.voice) if speakable else b""
            assert run.item is not None
            self.run.spoken[run.item["id"]] = self.spoken
            shown = clause if not run.text else clause_joined(run.text, clause)
            await run.emit({"type": "response.output_audio_transcript.delta", **run.where(), "delta": shown})
            run.text += shown
            self.spoken.clauses.append((shown, self.spoken.audio_ms + ms_of(len(pcm))))
            sent, step = audio_out(pcm, run.config.output_format), bytes_per_ms(run.config.output_format) * DELTA_MS
            for start in range(0, len(sent), step):
                delta = base64.b64encode(sent[start : start + step]).decode("ascii")
                await run.emit({"type": "response.output_audio.delta", **run.where(), "delta": delta})
                run.answered()


def clause_joined(before: str, clause: str) -> str:
    """A clause as it follows the text before it: a space between words, none after CJK punctuation."""
    if before[-1:].isascii() and clause[:1].isascii() and not before[-1:].isspace():
        return " " + clause
    return clause
