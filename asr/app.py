"""asr: the transcriber over its engine, served by the routes of ``asr.routes``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asr.config import Settings, SpeakerEncoderName
from asr.diarize import Diarizer
from asr.engines import ENGINES
from asr.engines.base import AsrEngine
from asr.pipeline import Transcriber
from asr.routes import router
from services.app import create_app as create_service_app
from services.speaker_encoder import ResemblyzerEncoder, SpeakerEncoder


def create_app(
    settings: Settings | None = None, engine: AsrEngine | None = None, speaker_encoder: SpeakerEncoder | None = None
) -> FastAPI:
    """The asr app; ``engine`` and ``speaker_encoder`` let several apps share loaded models (tests, benchmarks)."""
    settings = settings or Settings()
    transcriber = Transcriber(engine or ENGINES[settings.engine](settings), settings, settings.engine.value)
    if settings.speaker_encoder is SpeakerEncoderName.none:
        speaker_encoder = None
    else:
        speaker_encoder = speaker_encoder or ResemblyzerEncoder()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with transcriber.lifecycle.running():
            yield
        transcriber.close()

    app = create_service_app(settings, name="asr", health=transcriber.health, lifespan=lifespan)
    app.state.transcriber = transcriber
    app.state.diarizer = Diarizer(speaker_encoder, transcriber)
    app.include_router(router)
    return app
