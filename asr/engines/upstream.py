"""An OpenAI-compatible ``/v1/audio/transcriptions`` upstream (vLLM, speaches, Xinference, OpenAI).

``task="translate"`` goes to the upstream's ``/audio/translations``; an upstream without that route
(a 404) is a 400 saying the upstream does not translate.

The pipeline still decodes and cuts the audio here (VAD), so every upstream gets 16 kHz mono WAV
pieces of at most ``chunk_seconds`` and streaming works even where the upstream cannot stream.
"""

from __future__ import annotations

import asyncio
import io
import wave

import httpx
import numpy as np

from asr.config import Settings
from asr.engines.base import SAMPLE_RATE, Segment, Span, TranscribeRequest, Transcript
from asr.engines.silero_vad import SileroVad
from asr.engines.whisper import whisper_languages
from services.engine import Engine
from services.errors import BadRequest, UpstreamError
from services.upstream import client_options, map_upstream_errors, raise_for_upstream_status


def to_wav(audio: np.ndarray) -> bytes:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


class UpstreamEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.upstream_model
        self.label = f"the asr upstream at {settings.upstream_url}"
        self.languages: frozenset[str] = frozenset()
        self.translates = True  # OpenAI's protocol has /audio/translations
        self.drafts = False  # no cheaper pass: live phrases get the one full pass
        self.vad = SileroVad(min_silence_ms=settings.min_silence_ms, max_span_seconds=settings.chunk_seconds)
        self.client: httpx.Client | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        if self.client is not None:
            return
        if not self.settings.upstream_url:
            raise RuntimeError("engine=upstream needs ASR_UPSTREAM_URL (e.g. http://vllm:8000/v1)")
        self.client = httpx.Client(
            **client_options(
                self.settings.upstream_url,
                api_key=self.settings.upstream_api_key,
                timeout_s=self.settings.upstream_timeout_s,
                ca_bundle=self.settings.upstream_ca_bundle,
            )
        )
        self.vad.load()
        self.languages = whisper_languages()

    async def aclose(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def speech_spans(self, audio: np.ndarray) -> list[Span]:
        return self.vad(audio)

    def transcribe(self, request: TranscribeRequest) -> Transcript:
        assert self.client is not None, "start() first"
        data = {"model": self.settings.upstream_model, "response_format": "json"}
        translate = request.task == "translate"
        if request.language and not translate:  # translations take no language: the upstream detects it
            data["language"] = request.language
        if request.prompt:
            data["prompt"] = request.prompt
        files = {"file": ("audio.wav", to_wav(request.audio), "audio/wav")}
        path = "/audio/translations" if translate else "/audio/transcriptions"
        with map_upstream_errors(self.label):
            response = self.client.post(path, data=data, files=files)
        if translate and response.status_code == 404:
            raise BadRequest(f"{self.label} does not translate (it has no /audio/translations)")
        raise_for_upstream_status(response, self.label)
        try:
            text = str(response.json()["text"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"{self.label} answered without a 'text' field") from exc
        duration = request.audio.size / SAMPLE_RATE
        segments = [Segment(0.0, duration, text)] if text else []
        return Transcript(text, "en" if translate else request.language, segments)

    def draft(self, request: TranscribeRequest) -> Transcript:
        return self.transcribe(request)
