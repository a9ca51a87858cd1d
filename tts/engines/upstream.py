"""An OpenAI-compatible ``/v1/audio/speech`` upstream (another lingxi tts, a vLLM/SGLang TTS
server, a cloud API), for scale-out. Styles are the upstream's voices (``TTS_UPSTREAM_VOICES``)."""

from __future__ import annotations

from typing import Any

import httpx

from services.engine import Engine, require_settings
from services.errors import BadRequest, UpstreamError
from services.upstream import client_options, map_upstream_errors, raise_for_upstream_status
from tts.audio import read_wav
from tts.config import Settings
from tts.engines.base import Audio, SynthesisRequest


class UpstreamEngine(Engine):
    name = "upstream"
    max_parallel = 16
    handles_speed = True

    def __init__(self, settings: Settings) -> None:
        require_settings(settings, "upstream_url")
        self.label = f"the tts upstream at {settings.upstream_url}"
        self.model = settings.upstream_model
        self.voices = list(settings.upstream_voices)
        self.client = httpx.Client(
            **client_options(
                settings.upstream_url or "",
                api_key=settings.upstream_api_key,
                timeout_s=settings.upstream_timeout_s,
                ca_bundle=settings.upstream_ca_bundle,
            )
        )

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
        if request.instructions:
            body["instructions"] = request.instructions
        with map_upstream_errors(self.label):
            response = self.client.post("/audio/speech", json=body)
        raise_for_upstream_status(response, self.label)
        try:
            return read_wav(response.content)
        except ValueError as exc:
            raise UpstreamError(f"{self.label} did not send PCM16 WAV audio") from exc
