"""Live recognition for ``WS /asr/ws``: PCM16 frames in, a speech piece out each time a pause closes one.

The session keeps only the audio since the last piece it handed out (at most ``chunk_seconds`` of it,
plus silence it throws away), so memory stays bounded however long the client talks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from asr.engines.base import SAMPLE_RATE, Span
from services.errors import BadRequest, PayloadTooLarge

FORMATS = ("pcm_s16le", "s16le", "pcm16")
CLOSED_MARGIN = SAMPLE_RATE // 10  # a span ending this far before the buffer's end has been closed by a pause
VAD_EVERY = SAMPLE_RATE // 4  # look for closed spans each time this much new audio arrived


@dataclass(frozen=True)
class StreamFormat:
    sample_rate: int = SAMPLE_RATE
    language: str | None = None

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
        return cls(rate, language if isinstance(language, str) else None)


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
    def __init__(self, *, max_piece_seconds: float, max_total_seconds: float) -> None:
        self.audio = np.zeros(0, np.float32)
        self.offset = 0  # samples of the session before self.audio[0]
        self.unchecked = 0  # samples added since the last VAD pass
        self.total = 0
        self.max_piece = int(max_piece_seconds * SAMPLE_RATE)
        self.max_total = int(max_total_seconds * SAMPLE_RATE)

    def add(self, samples: np.ndarray) -> None:
        self.total += samples.size
        if self.total > self.max_total:
            raise PayloadTooLarge(f"the live session is longer than {self.max_total // SAMPLE_RATE} seconds")
        self.audio = np.concatenate([self.audio, samples])
        self.unchecked += samples.size

    @property
    def due(self) -> bool:
        return self.unchecked >= VAD_EVERY

    def take_closed(self, spans: list[Span], *, final: bool = False) -> tuple[np.ndarray, float] | None:
        """Cut off the speech closed by a pause (all of it when ``final``): (audio, start seconds) or None."""
        self.unchecked = 0
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
