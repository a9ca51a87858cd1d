"""SenseVoiceSmall through funasr (``pip install 'lingxi[sensevoice]'``), from local model directories.

``ASR_MODEL_DIR`` holds SenseVoiceSmall (config.yaml, model.pt, tokenizer files), ``ASR_VAD_DIR`` the
fsmn-vad model that finds the speech in long files. Nothing is fetched from a hub.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from asr.config import Settings
from asr.engines.base import SAMPLE_RATE, Segment, Span, TranscribeRequest, Transcript
from asr.engines.sensevoice_tags import LANGUAGES, parse_rich_text
from asr.engines.silero_vad import SileroVad
from services.engine import Engine
from services.errors import BadRequest

MS = SAMPLE_RATE // 1000


def torch_device(device: str) -> str:
    if device != "auto":
        return "cuda:0" if device == "cuda" else device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class SenseVoiceEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.model_dir.name if settings.model_dir else "SenseVoiceSmall"
        self.languages = frozenset(LANGUAGES)
        self.translates = False  # SenseVoice transcribes in the language spoken; it has no translation task
        self.drafts = False  # no cheaper pass: live phrases get the one full pass
        self.model: Any = None
        self.vad_model: Any = None
        self.fallback_vad = SileroVad(min_silence_ms=settings.min_silence_ms, max_span_seconds=settings.chunk_seconds)

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        if self.model is not None:
            return
        if self.settings.model_dir is None:
            raise RuntimeError("engine=sensevoice needs ASR_MODEL_DIR (a local SenseVoiceSmall directory)")
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise RuntimeError("engine=sensevoice needs funasr: pip install 'lingxi[sensevoice]'") from exc
        device = torch_device(self.settings.device)
        common = {"device": device, "disable_update": True, "disable_pbar": True, "log_level": "ERROR"}
        self.model = AutoModel(model=str(self.settings.model_dir), **common)
        if self.settings.vad_dir is not None:
            max_ms = int(self.settings.chunk_seconds * 1000)
            self.vad_model = AutoModel(
                model=str(self.settings.vad_dir), max_single_segment_time=max_ms, max_end_silence_time=500, **common
            )
        else:
            self.fallback_vad.load()

    def speech_spans(self, audio: np.ndarray) -> list[Span]:
        if self.vad_model is None:
            return self.fallback_vad(audio)
        if audio.size < SAMPLE_RATE // 10:
            return []
        result = self.vad_model.generate(input=audio, fs=SAMPLE_RATE, disable_pbar=True)
        found = result[0]["value"] if result else []
        return [Span(max(0, int(b) * MS), min(audio.size, int(e) * MS)) for b, e in found if e > b]

    def transcribe(self, request: TranscribeRequest) -> Transcript:
        try:
            result = self.model.generate(
                input=request.audio,
                fs=SAMPLE_RATE,
                language=request.language or "auto",
                use_itn=self.settings.use_itn,
                ban_emo_unk=False,
                disable_pbar=True,
            )
        except ValueError as exc:  # funasr's fbank front end: audio too short to featurize
            raise BadRequest(f"sensevoice could not transcribe the audio: {exc}") from exc
        raw = result[0]["text"] if result else ""
        rich = parse_rich_text(raw)
        duration = request.audio.size / SAMPLE_RATE
        segments = [Segment(0.0, duration, rich.text)] if rich.text else []
        return Transcript(rich.text, rich.language, segments, emotion=rich.emotion, event=rich.event)

    def draft(self, request: TranscribeRequest) -> Transcript:
        return self.transcribe(request)
