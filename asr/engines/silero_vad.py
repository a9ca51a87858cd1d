"""Silero VAD as shipped inside faster-whisper (an ONNX file run by onnxruntime): where is speech."""

from __future__ import annotations

import numpy as np

from asr.engines.base import SAMPLE_RATE, Span


class SileroVad:
    def __init__(self, *, min_silence_ms: int = 500, max_span_seconds: float = 30.0, pad_ms: int = 200) -> None:
        self.min_silence_ms = min_silence_ms
        self.max_span_seconds = max_span_seconds
        self.pad_ms = pad_ms

    def load(self) -> None:
        from faster_whisper.vad import get_vad_model

        get_vad_model()  # cached by faster-whisper; loads the ONNX session once

    def __call__(self, audio: np.ndarray) -> list[Span]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        if audio.size < SAMPLE_RATE // 10:
            return []
        options = VadOptions(
            min_silence_duration_ms=self.min_silence_ms,
            max_speech_duration_s=self.max_span_seconds,
            speech_pad_ms=self.pad_ms,
            min_speech_duration_ms=150,
        )
        found = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
        return [Span(int(item["start"]), min(int(item["end"]), audio.size)) for item in found]
