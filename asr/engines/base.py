"""The asr engine protocol and its typed request/response objects.

Audio reaching an engine is always mono 16 kHz float32 (``services.media.decode_audio``), already cut
at pauses into pieces of at most ``chunk_seconds``: an engine transcribes one piece at a time and
finds the speech in a whole file (``speech_spans``) with its own VAD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from services.engine import Engine
from services.media import SAMPLE_RATE


@dataclass(frozen=True)
class Span:
    """Speech between two sample offsets."""

    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass(frozen=True)
class TranscribeRequest:
    audio: np.ndarray  # mono 16 kHz float32
    language: str | None = None  # None: detect
    prompt: str | None = None
    word_timestamps: bool = False
    task: Literal["transcribe", "translate"] = "transcribe"  # translate: English text (engines with translates)


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass
class Segment:
    start: float  # seconds from the start of the piece (the pipeline shifts them to the file)
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


@dataclass
class Transcript:
    text: str
    language: str | None
    segments: list[Segment] = field(default_factory=list)
    emotion: str | None = None  # SenseVoice's rich tags
    event: str | None = None


class AsrEngine(Engine, Protocol):
    """Started and closed as every engine; the two calls below block (the pipeline runs them off the loop)."""

    model_name: str
    languages: frozenset[str]  # codes accepted in TranscribeRequest.language (known once started)
    translates: bool  # whether task="translate" works (known once started)
    drafts: bool  # whether ``draft`` is a cheaper pass than ``transcribe`` (live drafts on WS /asr/ws)

    def speech_spans(self, audio: np.ndarray) -> list[Span]:
        """Where there is speech in ``audio`` (VAD); empty for silence."""

    def transcribe(self, request: TranscribeRequest) -> Transcript:
        """Transcribe one piece of at most ``chunk_seconds`` (blocking)."""

    def draft(self, request: TranscribeRequest) -> Transcript:
        """A quick, rougher transcript of one live phrase (blocking); without a cheaper pass: ``transcribe``."""
