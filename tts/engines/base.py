"""The one engine Protocol of tts and its typed request/response objects.

An engine synthesises ONE piece of text (a sentence); splitting long text, pauses, streaming and
encoding live in ``tts.synthesis`` and ``tts.audio`` so that every engine gets them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from services.engine import Engine
from tts.audio import Audio

__all__ = ["Audio", "PromptAudio", "SynthesisRequest", "TTSEngine"]


@dataclass(frozen=True)
class PromptAudio:
    """The user's reference recording: the upload as sent, and decoded to mono 16 kHz float32."""

    data: bytes
    samples: np.ndarray = field(repr=False)
    sample_rate: int = 16_000


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    style: str
    style_explicit: bool = False  # the client named the style (rather than getting the default)
    prompt_audio: PromptAudio | None = None
    temperature: float | None = None
    top_p: float | None = None
    speed: float = 1.0
    instructions: str | None = None  # OpenAI's voice instructions; only an upstream uses them (forwards them)


class TTSEngine(Engine, Protocol):
    name: str
    max_parallel: int  # generations run at once (1 for models that are not thread-safe)
    handles_speed: bool  # False: the service time-stretches the output itself

    def styles(self) -> list[str]:
        """Names accepted as ``style`` / ``voice``."""

    def synthesize(self, request: SynthesisRequest) -> Audio:
        """Synthesise one piece of text. Raise services.errors on bad input or engine failure."""
