"""The transcription pipeline every route shares.

decode (any container, any rate) → VAD → pieces of at most ``chunk_seconds`` cut at pauses → the
engine, one piece at a time on the model thread → texts and segment times joined for the file.
Memory stays bounded by the duration limit for the decoded PCM and by one piece for the model.
A bounded number of transcriptions is admitted at once; beyond it callers get 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from asr.config import Settings
from asr.engines.base import SAMPLE_RATE, AsrEngine, Segment, Span, TranscribeRequest, Transcript
from asr.engines.silero_vad import SileroVad
from services.engine import Lifecycle
from services.errors import BadRequest, TooManyRequests
from services.health import Health
from services.media import AudioLimits, decode_audio

UNSPACED_LANGUAGES = {"zh", "ja", "yue", "th", "lo", "my", "bo"}


@dataclass
class Result:
    text: str
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)
    emotion: str | None = None
    event: str | None = None


def join_texts(texts: list[str], language: str | None) -> str:
    texts = [text for text in texts if text]
    return ("" if language in UNSPACED_LANGUAGES else " ").join(texts)


def group_spans(spans: list[Span], max_samples: int) -> list[Span]:
    """Merge neighbouring speech spans into pieces no longer than ``max_samples``."""
    pieces: list[Span] = []
    for span in spans:
        if pieces and span.end - pieces[-1].start <= max_samples:
            pieces[-1] = Span(pieces[-1].start, span.end)
        else:
            pieces.append(span)
    return pieces


def shift(transcript: Transcript, offset_s: float) -> list[Segment]:
    shifted = []
    for segment in transcript.segments:
        words = [replace(w, start=w.start + offset_s, end=w.end + offset_s) for w in segment.words]
        shifted.append(replace(segment, start=segment.start + offset_s, end=segment.end + offset_s, words=words))
    return shifted


class Ticket:
    """One admitted transcription; ``release`` may be called more than once (stream end, disconnect)."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber: Transcriber | None = transcriber

    def release(self) -> None:
        if self.transcriber is not None:
            self.transcriber.admitted -= 1
            self.transcriber = None


class Transcriber:
    def __init__(self, engine: AsrEngine, settings: Settings, engine_name: str) -> None:
        self.engine = engine
        self.lifecycle = Lifecycle(f"the {engine_name} engine", engine)
        self.settings = settings
        self.engine_name = engine_name
        self.limits = AudioLimits(max_bytes=settings.max_audio_bytes, max_seconds=settings.max_audio_seconds)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-model")
        self.draft_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-draft")
        self.live_vad = SileroVad(min_silence_ms=settings.live_silence_ms, max_span_seconds=settings.chunk_seconds)
        self.admitted = 0

    def health(self) -> Health:
        return self.lifecycle.health({"engine": self.engine_name, "model": self.engine.model_name})

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.draft_executor.shutdown(wait=False, cancel_futures=True)

    # --- admission --------------------------------------------------------------------------
    def acquire(self) -> Ticket:
        self.lifecycle.require()
        if self.admitted >= self.settings.max_pending:
            raise TooManyRequests(f"{self.admitted} transcriptions are in progress; retry shortly")
        self.admitted += 1
        return Ticket(self)

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        ticket = self.acquire()
        try:
            yield
        finally:
            ticket.release()

    async def admit_and_decode(self, data: bytes) -> tuple[Ticket, np.ndarray]:
        """For streams: admit and decode; the stream releases the ticket when it ends."""
        ticket = self.acquire()
        try:
            return ticket, await self.decode(data)
        except BaseException:
            ticket.release()
            raise

    async def on_model_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # --- inputs -----------------------------------------------------------------------------
    def check_language(self, language: str | None) -> str | None:
        if language is None or language.strip().lower() in ("", "auto"):
            return None
        code = language.strip().lower()
        if code not in self.engine.languages:
            known = ", ".join(sorted(self.engine.languages)[:40])
            raise BadRequest(f"language {language!r} is not supported by the {self.engine_name} engine ({known})")
        return code

    async def decode(self, data: bytes) -> np.ndarray:
        return await asyncio.to_thread(decode_audio, data, self.limits)

    async def speech(self, audio: np.ndarray) -> list[Span]:
        return await asyncio.to_thread(self.engine.speech_spans, audio)

    async def live_speech(self, audio: np.ndarray) -> list[Span]:
        """Speech in a live buffer, ended by the shorter live pause (``ASR_LIVE_SILENCE_MS``)."""
        return await asyncio.to_thread(self.live_vad, audio)

    def pieces(self, spans: list[Span], *, merge: bool) -> list[Span]:
        max_samples = int(self.settings.chunk_seconds * SAMPLE_RATE)
        return group_spans(spans, max_samples) if merge else spans

    # --- transcription ----------------------------------------------------------------------
    async def transcribe_piece(
        self,
        audio: np.ndarray,
        piece: Span,
        language: str | None,
        prompt: str | None,
        words: bool,
        offset_s: float | None = None,
    ) -> tuple[Transcript, list[Segment]]:
        """One piece on the model thread: its transcript and its segments timed from ``offset_s``."""
        request = TranscribeRequest(audio[piece.start : piece.end], language, prompt, words)
        transcript = await self.on_model_thread(self.engine.transcribe, request)  # engines raise BadRequest
        return transcript, shift(transcript, piece.start / SAMPLE_RATE if offset_s is None else offset_s)

    async def draft(self, audio: np.ndarray, language: str | None) -> Transcript:
        """The engine's quick pass over one live phrase, on its own thread: a full pass never holds it up."""
        request = TranscribeRequest(audio, language)
        return await asyncio.get_running_loop().run_in_executor(self.draft_executor, self.engine.draft, request)

    async def stream(
        self, audio: np.ndarray, *, language: str | None = None, prompt: str | None = None, words: bool = False
    ) -> AsyncIterator[tuple[Transcript, list[Segment]]]:
        """One (transcript, file-timed segments) per VAD piece, as each is decoded."""
        spans = await self.speech(audio)
        for piece in self.pieces(spans, merge=False):
            transcript, segments = await self.transcribe_piece(audio, piece, language, prompt, words)
            if language is None and transcript.language in self.engine.languages:
                language = transcript.language  # detect once, then keep it for the rest of the file
            yield transcript, segments

    async def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str | None = None,
        prompt: str | None = None,
        words: bool = False,
        merge: bool = True,
    ) -> Result:
        """``merge``: neighbouring stretches of speech share a piece of up to ``chunk_seconds``."""
        spans = await self.speech(audio)
        collected = Collector(audio.size / SAMPLE_RATE, language)
        for piece in self.pieces(spans, merge=merge):
            transcript, segments = await self.transcribe_piece(audio, piece, collected.language, prompt, words)
            collected.add(transcript, segments, self.engine.languages)
        return collected.result()


class Collector:
    """Joins the pieces of one file into a ``Result``."""

    def __init__(self, duration: float, language: str | None) -> None:
        self.duration = duration
        self.language = language
        self.detected: str | None = language
        self.texts: list[str] = []
        self.segments: list[Segment] = []
        self.emotion: str | None = None
        self.event: str | None = None

    def add(self, transcript: Transcript, segments: list[Segment], languages: frozenset[str]) -> None:
        self.texts.append(transcript.text)
        self.segments.extend(segments)
        self.detected = self.detected or transcript.language
        if self.language is None and transcript.language in languages:
            self.language = transcript.language
        self.emotion = self.emotion or transcript.emotion
        self.event = self.event or transcript.event

    @property
    def text(self) -> str:
        return join_texts(self.texts, self.detected)

    def result(self) -> Result:
        return Result(self.text, self.detected, round(self.duration, 3), self.segments, self.emotion, self.event)
