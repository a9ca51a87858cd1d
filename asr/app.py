"""asr routes: the seed API (/asr, /asr/stream), OpenAI's /v1/audio/transcriptions and WS /asr/ws."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, File, Form, UploadFile, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from asr.config import Settings
from asr.engines import ENGINES
from asr.engines.base import SAMPLE_RATE, AsrEngine
from asr.formats import to_srt, to_verbose_json, to_vtt
from asr.live_route import live_session
from asr.pipeline import Collector, Result, Ticket, Transcriber
from services.app import create_app as create_service_app
from services.streaming import ndjson_response, sse_response

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


def seed_body(result: Result) -> dict[str, Any]:
    body: dict[str, Any] = {"text": result.text, "language": result.language, "duration": result.duration}
    if result.emotion is not None:
        body["emotion"] = result.emotion
    if result.event is not None:
        body["event"] = result.event
    body["segments"] = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text} for s in result.segments]
    return body


def with_release(response: StreamingResponse, ticket: Ticket) -> StreamingResponse:
    """Release the stream's ticket even when the client leaves before the stream starts."""
    response.background = BackgroundTask(ticket.release)
    return response


def create_app(settings: Settings | None = None, engine: AsrEngine | None = None) -> FastAPI:
    """The asr app; ``engine`` lets several apps share one loaded model (tests, benchmarks)."""
    settings = settings or Settings()
    transcriber = Transcriber(engine or ENGINES[settings.engine](settings), settings, settings.engine.value)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with transcriber.lifecycle.running():
            yield
        transcriber.close()

    app = create_service_app(settings, name="asr", health=transcriber.health, lifespan=lifespan)
    app.state.transcriber = transcriber

    @app.post("/asr")
    async def asr(file: UploadFile = File(...), language: str | None = Form(None)) -> dict[str, Any]:
        code = transcriber.check_language(language)
        async with transcriber.admit():
            audio = await transcriber.decode(await file.read())
            result = await transcriber.transcribe(audio, language=code)
        return seed_body(result)

    @app.post("/asr/stream")
    async def asr_stream(file: UploadFile = File(...), language: str | None = Form(None)) -> Response:
        code = transcriber.check_language(language)
        ticket, audio = await transcriber.admit_and_decode(await file.read())

        async def lines() -> AsyncIterator[dict[str, Any]]:
            collected = Collector(audio.size / SAMPLE_RATE, code)
            try:
                async for transcript, segments in transcriber.stream(audio, language=code):
                    collected.add(transcript, segments, transcriber.engine.languages)
                    span = {"start": round(segments[0].start, 3), "end": round(segments[-1].end, 3)} if segments else {}
                    yield {"partial_text": collected.text, "text": transcript.text, **span}
                body = seed_body(collected.result())
                yield {"partial_text": body.pop("text"), "final": True, **body}
            finally:
                ticket.release()

        return with_release(ndjson_response(lines()), ticket)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: UploadFile = File(...),
        model: str = Form("whisper-1"),
        language: str | None = Form(None),
        prompt: str | None = Form(None),
        response_format: ResponseFormat = Form("json"),
        temperature: float = Form(0.0),
        stream: bool = Form(False),
        timestamp_granularities: list[str] | None = Form(None, alias="timestamp_granularities[]"),
    ) -> Response:
        code = transcriber.check_language(language)
        words = "word" in (timestamp_granularities or [])
        if stream:
            return await transcription_stream(file, code, prompt)
        async with transcriber.admit():
            audio = await transcriber.decode(await file.read())
            result = await transcriber.transcribe(audio, language=code, prompt=prompt, words=words)
        if response_format == "text":
            return PlainTextResponse(result.text + "\n")
        if response_format == "srt":
            return PlainTextResponse(to_srt(result))
        if response_format == "vtt":
            return PlainTextResponse(to_vtt(result), media_type="text/vtt")
        if response_format == "verbose_json":
            return JSONResponse(to_verbose_json(result, words=words))
        return JSONResponse({"text": result.text, "usage": {"type": "duration", "seconds": round(result.duration)}})

    async def transcription_stream(file: UploadFile, code: str | None, prompt: str | None) -> Response:
        ticket, audio = await transcriber.admit_and_decode(await file.read())

        async def events() -> AsyncIterator[dict[str, Any]]:
            collected = Collector(audio.size / SAMPLE_RATE, code)
            try:
                async for transcript, segments in transcriber.stream(audio, language=code, prompt=prompt):
                    before = collected.text
                    collected.add(transcript, segments, transcriber.engine.languages)
                    delta = collected.text[len(before) :]
                    if delta:
                        yield {"type": "transcript.text.delta", "delta": delta}
                usage = {"type": "duration", "seconds": round(collected.duration)}
                yield {"type": "transcript.text.done", "text": collected.text, "usage": usage}
            finally:
                ticket.release()

        return with_release(sse_response(events(), done=False), ticket)

    @app.websocket("/asr/ws")
    async def asr_ws(websocket: WebSocket) -> None:
        await live_session(websocket, transcriber)

    return app
