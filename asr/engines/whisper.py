"""faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA. Default model: the embedded Whisper base."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from asr.config import Settings
from asr.engines.base import Segment, Span, TranscribeRequest, Transcript, Word
from asr.engines.silero_vad import SileroVad
from asr.engines.whisper_draft import whisper_draft
from asr.engines.whisper_model import embedded_whisper_dir
from services.engine import Engine
from services.errors import BadRequest


def whisper_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class WhisperEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.model_dir.name if settings.model_dir else "whisper-base"
        self.languages: frozenset[str] = frozenset()
        self.translates = False  # multilingual models translate to English; English-only ones cannot
        self.drafts = True  # whisper_draft: a short window and greedy decoding for live drafts
        self.vad = SileroVad(min_silence_ms=settings.min_silence_ms, max_span_seconds=settings.chunk_seconds)
        self.model: Any = None

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        if self.model is not None:
            return
        from faster_whisper import WhisperModel

        model_dir = self.settings.model_dir or embedded_whisper_dir(self.settings.model_cache_dir)
        device = pick_device(self.settings.device)
        compute_type = self.settings.compute_type
        if compute_type == "default":
            compute_type = "float16" if device == "cuda" else "int8"
        self.model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=self.settings.cpu_threads,
            num_workers=2,  # two replicas sharing the weights: a live draft need not wait for a full pass
        )
        self.translates = self.model.model.is_multilingual
        self.languages = whisper_languages() if self.translates else frozenset({"en"})
        self.vad.load()

    def speech_spans(self, audio: np.ndarray) -> list[Span]:
        return self.vad(audio)

    def transcribe(self, request: TranscribeRequest) -> Transcript:
        try:
            pieces, info = self.model.transcribe(
                request.audio,
                language=request.language,
                initial_prompt=request.prompt or None,
                beam_size=self.settings.beam_size,
                vad_filter=False,  # the pipeline has already cut the audio at pauses
                condition_on_previous_text=False,
                word_timestamps=request.word_timestamps,
                task=request.task,
            )
            segments = [to_segment(piece) for piece in pieces]
        except ValueError as exc:  # e.g. a language the model does not know
            raise BadRequest(f"whisper rejected the request: {exc}") from exc
        text = "".join(segment.text for segment in segments).strip()
        for segment in segments:
            segment.text = segment.text.strip()
        return Transcript(text=text, language=info.language, segments=segments)

    def draft(self, request: TranscribeRequest) -> Transcript:
        try:
            return whisper_draft(self.model, request.audio, request.language)
        except ValueError as exc:
            raise BadRequest(f"whisper rejected the request: {exc}") from exc


def to_segment(piece: Any) -> Segment:
    words = [Word(w.start, w.end, w.word, w.probability) for w in (piece.words or [])]
    return Segment(
        start=piece.start,
        end=piece.end,
        text=piece.text,
        words=words,
        avg_logprob=piece.avg_logprob,
        no_speech_prob=piece.no_speech_prob,
        compression_ratio=piece.compression_ratio,
    )
