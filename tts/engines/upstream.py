"""An OpenAI-compatible ``/v1/audio/speech`` upstream (another lingxi tts, a vLLM/SGLang TTS
server, a cloud API), for scale-out. Styles are the upstream's voices (``TTS_UPSTREAM_VOICES``)."""

from __future__ import annotations

from typing import Any

import httpx

from services.clients import raise_for_upstream_status
from services.engine import Engine, require_settings
from services.errors import BadRequest, UpstreamError, UpstreamTimeout
from tts.audio import read_wav
from tts.config import Settings
from tts.engines.base import Audio, SynthesisRequest


class UpstreamEngine(Engine):
    name = "upstream"
    max_parallel = 16
    handles_speed = True

    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "upstream_url")
        self.url = (settings.upstream_url or "").rstrip("/") + "/audio/speech"
        self.model = settings.upstream_model
        self.voices = list(settings.upstream_voices)
        headers = {"Authorization": f"Bearer {settings.upstream_api_key}"} if settings.upstream_api_key else {}
        self.client = httpx.Client(timeout=settings.upstream_timeout_s, headers=headers, trust_env=False)

    async def aclose(self) -> None:
        self.client.close()

    def styles(self) -> list[str]:
        return self.voices

    def synthesize(self, request: SynthesisRequest) -> Audio:
        if request.style not in self.voices:
            raise BadRequest(f"unknown style {request.style!r}; valid styles: {', '.join(self.voices)}")
        body: dict[str, Any] = {
            "model": self.model,
            "input": request.text,
            "voice": request.style,
            "response_format": "wav",
            "speed": request.speed,
        }
        try:
            response = self.client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"the tts upstream did not answer in time ({self.url})") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the tts upstream is unreachable ({self.url}): {type(exc).__name__}") from exc
        raise_for_upstream_status(response, "tts upstream")
        try:
            return read_wav(response.content)
        except ValueError as exc:
            raise UpstreamError("the tts upstream did not send PCM16 WAV audio") from exc
