"""The input audio: the buffer of PCM16 24 kHz the client appends to, and the server VAD over it.

The VAD is Silero, as the asr service uses it (the ONNX model shipped in faster-whisper), run on
16 kHz audio 512 samples (32 ms) at a time, as the audio arrives: speech starts once
``MIN_SPEECH_WINDOWS`` windows in a row reach ``threshold`` (the turn starts at the first of them) and
stops after ``silence_duration_ms`` below it.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm.realtime.session import RATE

VAD_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz
BYTES_PER_MS = RATE * 2 // 1000
# Windows in a row at or above the threshold before speech starts (96 ms), since a start cancels the
# answer playing (barge-in). A knock or a click reaches the threshold in one or two windows; three
# reject them, while a spoken "uh" of 100 ms still starts a turn and barge-in stays near 200 ms.
# OpenAI's server_vad has no setting for it (pipecat waits 0.2 s, LiveKit's Silero 0.05 s).
MIN_SPEECH_WINDOWS = 3


def ms_of(data_bytes: int) -> int:
    return data_bytes // BYTES_PER_MS


def wav_bytes(pcm: bytes, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


class Resampler:
    """PCM16 24 kHz → float32 16 kHz, continuous across appends (FFmpeg's resampler through PyAV)."""

    def __init__(self) -> None:
        import av

        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
        self.leftover = b""

    def __call__(self, data: bytes) -> np.ndarray:
        import av

        data = self.leftover + data
        usable = len(data) - len(data) % 2
        self.leftover = data[usable:]
        if not usable:
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(data[:usable], "<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        out = [f.to_ndarray().reshape(-1) for f in self.resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def load_vad_model() -> Any:
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


@dataclass
class Turn:
    kind: str  # "started" or "stopped"
    at_ms: int  # into the session's input audio


class ServerVad:
    """Speech starts and stops in the session's input audio, as it is appended."""

    def __init__(self, model: Any, settings: dict[str, Any]) -> None:
        self.model = model
        self.threshold = float(settings["threshold"])
        self.silence_windows = max(1, int(settings["silence_duration_ms"] * VAD_RATE / 1000 / WINDOW))
        self.resample = Resampler()
        self.pending = np.zeros(0, np.float32)
        self.previous = np.zeros(0, np.float32)  # the last window looked at: the next one's context
        self.windows = 0  # windows looked at so far
        self.speaking = False
        self.rising = 0  # windows in a row at or above the threshold
        self.quiet = 0  # windows below the threshold since the last speech
        self.last_speech = 0  # the window after the last one with speech

    def feed(self, pcm: bytes) -> list[Turn]:
        self.pending = np.concatenate([self.pending, self.resample(pcm)])
        count = self.pending.size // WINDOW
        if not count:
            return []
        chunk, self.pending = self.pending[: count * WINDOW], self.pending[count * WINDOW :]
        # Silero reads each window with the end of the one before; the previous call's last window is
        # looked at again so that the first of this call has it too, however small the appends
        audio = np.concatenate([self.previous, chunk])
        probabilities = np.asarray(self.model(audio)).reshape(-1)[self.previous.size // WINDOW :][:count]
        self.previous = chunk[-WINDOW:]
        turns = []
        for probability in probabilities:
            self.windows += 1
            speech = probability >= self.threshold
            self.rising = self.rising + 1 if speech else 0
            if speech and not self.speaking and self.rising >= MIN_SPEECH_WINDOWS:
                self.speaking = True
                turns.append(Turn("started", self.ms(self.windows - MIN_SPEECH_WINDOWS)))
            if speech and self.speaking:
                self.quiet, self.last_speech = 0, self.windows
            elif self.speaking and probability < self.threshold - 0.15:
                self.quiet += 1
                if self.quiet >= self.silence_windows:
                    self.speaking = False
                    turns.append(Turn("stopped", self.ms(self.last_speech)))
        return turns

    @staticmethod
    def ms(windows: int) -> int:
        return windows * WINDOW * 1000 // VAD_RATE


class InputBuffer:
    """The appended audio not yet committed or cleared; ``start_ms``: where it begins in the session."""

    def __init__(self, max_ms: int) -> None:
        self.data = bytearray()
        self.dropped = 0  # bytes of the session's audio before self.data
        self.max_ms = max_ms

    @property
    def start_ms(self) -> int:
        return ms_of(self.dropped)

    @property
    def end_ms(self) -> int:
        return ms_of(self.dropped + len(self.data))

    def room(self, size: int) -> bool:
        return ms_of(len(self.data) + size) <= self.max_ms

    def append(self, pcm: bytes) -> None:
        self.data += pcm

    def since(self, start_ms: int) -> bytes:
        """The audio from ``start_ms`` (a session time) to the end, left in the buffer."""
        return bytes(self.data[min(len(self.data), max(0, start_ms * BYTES_PER_MS - self.dropped)) :])

    def take(self, start_ms: int | None = None, end_ms: int | None = None) -> bytes:
        """The audio from ``start_ms`` to ``end_ms`` (session times; the whole buffer by default); the
        buffer then starts at ``end_ms``."""
        begin = 0 if start_ms is None else min(len(self.data), max(0, start_ms * BYTES_PER_MS - self.dropped))
        end = len(self.data) if end_ms is None else min(len(self.data), max(0, end_ms * BYTES_PER_MS - self.dropped))
        piece = bytes(self.data[begin:end])
        self.drop(end)
        return piece

    def drop(self, size: int | None = None) -> None:
        size = len(self.data) if size is None else size
        size -= size % 2
        self.dropped += size
        del self.data[:size]

    def keep_last(self, ms: int) -> None:
        """Forget all but the last ``ms`` (silence before speech, kept for the prefix padding)."""
        self.drop(max(0, len(self.data) - ms * BYTES_PER_MS))
