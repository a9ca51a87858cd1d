"""Live recognition for ``WS /asr/ws``: PCM16 frames in, a draft of each phrase as soon as a pause
closes it, then the full pass's text for it.

Two passes per phrase, neither waiting for the other:

* the draft: when the live VAD (``ASR_LIVE_SILENCE_MS``) closes a phrase, the engine's quick pass
  (``AsrEngine.draft``: for Whisper a short window, greedy) on its own thread → ``{"type": "draft"}``;
* the final text: the full pass (beam search, 30 s window) on the model thread → ``{"type":
  "partial"}``, the text the final transcript is made of. One pass at a time, in order; each takes
  every phrase drafted since the last one began (up to ``ASR_CHUNK_SECONDS``): one phrase when the
  machine keeps up, several when it is behind, so its work stays bounded and the final text comes
  at most about one pass after the end.

The socket keeps being read while the model runs (keep-alive pings are answered); a client that sends
faster than real time is held back once ``chunk_seconds`` of its audio wait to be looked at. The
session keeps only the audio not yet looked at, the open phrase, and the phrases waiting for their
full pass, so memory stays bounded however long the client talks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from asr.engines.base import SAMPLE_RATE, Span
from asr.pipeline import Collector, Result, Transcriber, join_texts
from services.errors import BadRequest, PayloadTooLarge

FORMATS = ("pcm_s16le", "s16le", "pcm16")
FULL_PASSES = ("live", "at_end")
CLOSED_MARGIN = SAMPLE_RATE // 10  # a span ending this far before the buffer's end has been closed by a pause
VAD_EVERY = SAMPLE_RATE // 10  # look for closed spans each time this much new audio arrived (a frame, often)
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class StreamFormat:
    sample_rate: int = SAMPLE_RATE
    language: str | None = None
    full_pass: str = "live"  # "at_end": full passes wait for the end event (or a piece's worth of phrases)

    @classmethod
    def parse(cls, message: dict[str, Any]) -> StreamFormat:
        fmt = str(message.get("format", "pcm_s16le")).lower()
        if fmt not in FORMATS:
            raise BadRequest(f"format {fmt!r} is not supported; send mono PCM16 little-endian ('pcm_s16le')")
        rate = message.get("sample_rate", SAMPLE_RATE)
        if not isinstance(rate, int) or not 4000 <= rate <= 192_000:
            raise BadRequest("sample_rate must be an integer between 4000 and 192000")
        if message.get("channels", 1) != 1:
            raise BadRequest("send mono audio (channels: 1)")
        language = message.get("language")
        full_pass = message.get("full_pass", "live")
        if full_pass not in FULL_PASSES:
            raise BadRequest(f"full_pass must be one of {', '.join(FULL_PASSES)}")
        return cls(rate, language if isinstance(language, str) else None, full_pass)


class Resampler:
    """PCM16 at any rate → float32 at 16 kHz, continuous across frames (FFmpeg's resampler)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.leftover = b""
        self.resampler: Any = None
        if rate != SAMPLE_RATE:
            import av

            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, data: bytes) -> np.ndarray:
        data = self.leftover + data
        usable = len(data) - len(data) % 2
        self.leftover = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype="<i2")
        if self.resampler is None:
            return pcm.astype(np.float32) / 32768.0
        import av

        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        out = [f.to_ndarray().reshape(-1) for f in self.resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class LiveBuffer:
    """The session's audio: what arrived (``waiting``) is looked at ``VAD_EVERY`` samples at a time."""

    def __init__(self, *, max_piece_seconds: float, max_total_seconds: float) -> None:
        self.audio = np.zeros(0, np.float32)  # looked at, not yet handed out
        self.waiting = np.zeros(0, np.float32)  # arrived, not yet looked at
        self.offset = 0  # samples of the session before self.audio[0]
        self.total = 0
        self.max_piece = int(max_piece_seconds * SAMPLE_RATE)
        self.max_total = int(max_total_seconds * SAMPLE_RATE)

    def add(self, samples: np.ndarray) -> None:
        self.total += samples.size
        if self.total > self.max_total:
            raise PayloadTooLarge(f"the live session is longer than {self.max_total // SAMPLE_RATE} seconds")
        self.waiting = np.concatenate([self.waiting, samples])

    def advance(self, *, everything: bool = False) -> bool:
        """Look at the next ``VAD_EVERY`` samples (all of them when ``everything``): whether there were any."""
        size = self.waiting.size if everything else VAD_EVERY
        if self.waiting.size < size or size == 0:
            return False
        self.audio = np.concatenate([self.audio, self.waiting[:size]])
        self.waiting = self.waiting[size:]
        return True

    def take_closed(self, spans: list[Span], *, final: bool = False) -> tuple[np.ndarray, float] | None:
        """Cut off the speech closed by a pause (all of it when ``final``): (audio, start seconds) or None."""
        size = self.audio.size
        closed = spans if final else [s for s in spans if s.end + CLOSED_MARGIN <= size]
        if not closed and spans and size - spans[0].start > self.max_piece:  # no pause for too long
            closed = [Span(spans[0].start, spans[0].start + self.max_piece)]
        if not closed:
            if not spans:  # only silence: forget it, keep a little for the VAD's context
                self.drop(max(0, size - SAMPLE_RATE))
            return None
        start, end = closed[0].start, min(closed[-1].end, closed[0].start + self.max_piece)
        piece = self.audio[start:end].copy()
        at = (self.offset + start) / SAMPLE_RATE
        self.drop(end)
        return piece, at

    def drop(self, samples: int) -> None:
        self.audio = self.audio[samples:]
        self.offset += samples


@dataclass
class Phrase:
    audio: np.ndarray
    start: float  # seconds into the session
    draft: str

    @property
    def end(self) -> float:
        return self.start + self.audio.size / SAMPLE_RATE


class LiveSession:
    """One client's phrases: drafted as pauses close them, then replaced in order by the full pass."""

    def __init__(self, transcriber: Transcriber, send: Send) -> None:
        self.transcriber = transcriber
        self.send = send
        settings = transcriber.settings
        self.buffer = LiveBuffer(max_piece_seconds=settings.chunk_seconds, max_total_seconds=settings.ws_max_seconds)
        self.finals = Collector(0.0, None)  # the full pass's texts: the final transcript
        self.draft_language: str | None = None  # the first draft's, until the full pass has found one
        self.pending: deque[Phrase] = deque()  # drafted, waiting for the full pass
        self.in_flight: list[Phrase] = []  # in the full pass now
        self.finishing: asyncio.Task[None] | None = None  # that pass
        self.full_at_end = False  # full passes wait for the end (or for a piece's worth of phrases)
        self.ended = False
        self.changed = asyncio.Event()  # audio arrived, the end came, or audio was looked at

    # --- the reading side -------------------------------------------------------------------
    def set_format(self, language: str | None, full_pass: str) -> None:
        self.finals.language = self.finals.detected = language
        self.full_at_end = full_pass == "at_end"

    def add(self, samples: np.ndarray) -> None:
        self.buffer.add(samples)
        self.changed.set()

    def end(self) -> None:
        self.ended = True
        self.changed.set()

    async def room(self) -> None:
        """Wait while more than ``chunk_seconds`` of audio wait to be looked at (a faster-than-real-time client)."""
        while self.buffer.waiting.size > self.buffer.max_piece or self.pending_samples > 2 * self.buffer.max_piece:
            self.changed.clear()
            await self.changed.wait()

    # --- the working side -------------------------------------------------------------------
    async def run(self) -> Result:
        """Draft every phrase as it closes, until the end event; then finish every phrase: the transcript."""
        try:
            return await self.work()
        finally:
            if self.finishing is not None:  # the client left or a pass failed: nobody waits for this one
                self.finishing.cancel()

    async def work(self) -> Result:
        while True:
            self.check_finishing()
            if self.buffer.advance():
                self.changed.set()  # room for the reader
                await self.take_phrase(final=False)
            elif self.ended:
                break
            else:
                self.start_finishing()
                self.changed.clear()
                await self.changed.wait()
        self.buffer.advance(everything=True)
        await self.take_phrase(final=True)
        while self.pending or self.finishing is not None:
            if self.finishing is not None:
                await self.finishing
                self.finishing = None
            self.start_finishing()
        self.finals.duration = self.buffer.total / SAMPLE_RATE
        return self.finals.result()

    async def take_phrase(self, *, final: bool) -> None:
        """Draft what a pause has closed (everything left, when ``final``)."""
        while True:
            spans = await self.transcriber.live_speech(self.buffer.audio)
            taken = self.buffer.take_closed(spans, final=final)
            if taken is None:
                return
            audio, at = taken
            if self.transcriber.engine.drafts:
                transcript = await self.transcriber.draft(audio, self.finals.language or self.draft_language)
                if transcript.text and transcript.language in self.transcriber.engine.languages:
                    self.draft_language = self.draft_language or transcript.language
                phrase = Phrase(audio, at, transcript.text)
                self.pending.append(phrase)
                if phrase.draft or self.full_at_end:  # that client waits for a draft before it ends the stream
                    await self.send({"type": "draft", "text": phrase.draft, **self.heard(phrase.start, phrase.end)})
                self.start_finishing()
            else:  # the engine's one pass is both draft and final
                await self.finish([Phrase(audio, at, "")])
            if not final:
                return

    @property
    def pending_samples(self) -> int:
        return sum(phrase.audio.size for phrase in self.pending)

    def start_finishing(self) -> None:
        """Start the full pass over the waiting phrases (as many as fit in one piece), unless one is in
        flight or the passes wait for the end and less than a piece waits."""
        self.check_finishing()
        if self.finishing is not None or not self.pending:
            return
        if self.full_at_end and not self.ended and self.pending_samples < self.buffer.max_piece:
            return
        phrases = [self.pending.popleft()]
        while self.pending and self.pending[0].end - phrases[0].start <= self.buffer.max_piece / SAMPLE_RATE:
            phrases.append(self.pending.popleft())
        self.in_flight = phrases
        self.finishing = asyncio.create_task(self.finish(phrases))

    def check_finishing(self) -> None:
        """Raise what the finished full pass raised; free its place for the next one."""
        if self.finishing is not None and self.finishing.done():
            task, self.finishing = self.finishing, None
            task.result()

    async def finish(self, phrases: list[Phrase]) -> None:
        """The full pass over ``phrases`` (one piece), sent as a partial of the final transcript."""
        audio = np.concatenate([phrase.audio for phrase in phrases])
        start, end = phrases[0].start, phrases[-1].end
        transcript, segments = await self.transcriber.transcribe_piece(
            audio, Span(0, audio.size), self.finals.language, None, False, start
        )
        self.finals.add(transcript, segments, self.transcriber.engine.languages)
        self.in_flight = []
        self.changed.set()  # the next pass may start; the reader may have room again
        if transcript.text:
            await self.send({"type": "partial", "text": transcript.text, **self.heard(start, end)})

    def heard(self, start: float, end: float) -> dict[str, Any]:
        """A message's common fields; ``partial_text``: the full pass's text so far, then the drafts after it."""
        drafts = [phrase.draft for phrase in [*self.in_flight, *self.pending]]
        text = join_texts([self.finals.text, *drafts], self.finals.detected or self.draft_language)
        return {"partial_text": text, "start": round(start, 3), "end": round(end, 3)}
