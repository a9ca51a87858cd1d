"""asr routes: the seed API (/asr, /asr/stream), OpenAI's /v1/audio/transcriptions,
/v1/audio/translations (to English, where the engine translates) and /v1/models, and WS /asr/ws.

``WS /asr/ws`` is a conversation with one live client. Client → server: an optional first JSON text
message ``{"sample_rate": 8000, "format": "pcm_s16le", "language": "en"}``, then binary frames of mono
PCM16 (16 kHz unless said otherwise), then ``{"event": "end"}``. Server → client: ``{"type": "draft",
"text", "partial_text", "start", "end"}`` soon after a pause closes a phrase (the engine's quick pass),
``{"type": "partial", ...}`` when the full pass has its text (partials never change; the final text is
theirs joined), ``{"type": "final", "final": true, "text", ...}`` after the end event, or ``{"type":
"error", "error": {...}}``; then it closes the socket. ``asr.live`` has the how.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from asr.diarize import (
    Diarizer,
    SpeakerOptions,
    attribute,
    check_chunking_strategy,
    references,
    seed_speakers,
    speaker_at,
)
from asr.engines.base import SAMPLE_RATE, Segment, TranscribeRequest
from asr.formats import to_diarized_json, to_srt, to_verbose_json, to_vtt
from asr.live import LiveSession, Resampler, StreamFormat
from asr.pipeline import Collector, Result, Ticket, Transcriber, join_texts, shift
from services.app import app_state
from services.errors import BadRequest, LingxiError
from services.openai_models import model_list
from services.streaming import ndjson_response, sse_response

log = logging.getLogger("lingxi.asr")
CLOSE_CODES = {400: 1003, 413: 1009, 429: 1013, 503: 1013}
ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
TranscriberDep = Annotated[Transcriber, app_state("transcriber")]
DiarizerDep = Annotated[Diarizer, app_state("diarizer")]
SpeakerCount = Annotated[int | None, Form()]  # checked by SpeakerOptions.parse (400)
router = APIRouter()


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


@dataclass
class SeedForm:
    """The form fields of ``/asr`` and ``/asr/stream``."""

    file: Annotated[UploadFile, File()]
    language: Annotated[str | None, Form()] = None
    diarize: Annotated[bool, Form()] = False
    num_speakers: SpeakerCount = None
    min_speakers: SpeakerCount = None
    max_speakers: SpeakerCount = None

    def check(self, transcriber: Transcriber, diarizer: Diarizer) -> tuple[str | None, SpeakerOptions]:
        """The language code and the speaker options, or a 400 before any audio is read."""
        code = transcriber.check_language(self.language)
        options = SpeakerOptions.parse(self.num_speakers, self.min_speakers, self.max_speakers)
        if self.diarize:
            diarizer.require()
        return code, options


SeedFormDep = Annotated[SeedForm, Depends()]


@router.post("/asr")
async def asr(transcriber: TranscriberDep, diarizer: DiarizerDep, form: SeedFormDep) -> dict[str, Any]:
    code, options = form.check(transcriber, diarizer)
    async with transcriber.admit():
        audio = await transcriber.decode(await form.file.read())
        merge = not form.diarize or diarizer.merge_pieces
        result = await transcriber.transcribe(audio, language=code, words=form.diarize, merge=merge)
        spoken = await diarizer.attribute(audio, result.segments, options) if form.diarize else None
    return seed_speakers(seed_body(result), spoken)


@router.post("/asr/stream")
async def asr_stream(transcriber: TranscriberDep, diarizer: DiarizerDep, form: SeedFormDep) -> Response:
    code, options = form.check(transcriber, diarizer)
    ticket, audio = await transcriber.admit_and_decode(await form.file.read())
    try:
        turns = await diarizer.turns(audio, options) if form.diarize else None
    except BaseException:
        ticket.release()
        raise

    async def lines() -> AsyncIterator[dict[str, Any]]:
        collected = Collector(audio.size / SAMPLE_RATE, code)
        try:
            async for transcript, segments in transcriber.stream(audio, language=code):
                collected.add(transcript, segments, transcriber.engine.languages)
                span: dict[str, Any] = {}
                if segments:
                    span = {"start": round(segments[0].start, 3), "end": round(segments[-1].end, 3)}
                if turns is not None and segments:
                    span["speaker"] = speaker_at(turns, segments[0].start, segments[-1].end)
                yield {"partial_text": collected.text, "text": transcript.text, **span}
            result = collected.result()
            body = seed_speakers(seed_body(result), None if turns is None else attribute(result.segments, turns))
            yield {"partial_text": body.pop("text"), "final": True, **body}
        finally:
            ticket.release()

    return with_release(ndjson_response(lines()), ticket)


@router.post("/v1/audio/transcriptions")
async def transcriptions(
    transcriber: TranscriberDep,
    diarizer: DiarizerDep,
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    language: str | None = Form(None),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float = Form(0.0),
    stream: bool = Form(False),
    timestamp_granularities: list[str] | None = Form(None, alias="timestamp_granularities[]"),
    chunking_strategy: str | None = Form(None),
    known_speaker_names: list[str] | None = Form(None, alias="known_speaker_names[]"),
    known_speaker_references: list[str] | None = Form(None, alias="known_speaker_references[]"),
    num_speakers: SpeakerCount = None,
    min_speakers: SpeakerCount = None,
    max_speakers: SpeakerCount = None,
) -> Response:
    code = transcriber.check_language(language)
    words = "word" in (timestamp_granularities or [])
    check_chunking_strategy(chunking_strategy)
    diarize = response_format == "diarized_json"
    options = SpeakerOptions.parse(num_speakers, min_speakers, max_speakers)
    if diarize:
        diarizer.require()
        if stream:
            raise BadRequest("stream=true is not supported with response_format=diarized_json")
        known = await references(known_speaker_names or [], known_speaker_references or [], transcriber)
        options = SpeakerOptions(options.num_speakers, options.min_speakers, options.max_speakers, known)
    if stream:
        return await transcription_stream(transcriber, file, code, prompt)
    async with transcriber.admit():
        audio = await transcriber.decode(await file.read())
        merge = not diarize or diarizer.merge_pieces
        result = await transcriber.transcribe(audio, language=code, prompt=prompt, words=words or diarize, merge=merge)
        if diarize:
            return JSONResponse(to_diarized_json(result, await diarizer.attribute(audio, result.segments, options)))
    if response_format == "json":
        return JSONResponse({"text": result.text, "usage": {"type": "duration", "seconds": round(result.duration)}})
    return formatted(result, response_format, words=words, task="transcribe")


@router.post("/v1/audio/translations")
async def translations(
    transcriber: TranscriberDep,
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float = Form(0.0),
) -> Response:
    """English text of speech in any language the engine knows (OpenAI's translations)."""
    if response_format == "diarized_json":
        raise BadRequest("response_format=diarized_json is for /v1/audio/transcriptions, not translations")
    async with transcriber.admit():
        if not transcriber.engine.translates:
            raise BadRequest(
                f"the {transcriber.engine_name} engine ({transcriber.engine.model_name}) cannot translate; "
                "use /v1/audio/transcriptions, or a multilingual Whisper (ASR_ENGINE=whisper)"
            )
        audio = await transcriber.decode(await file.read())
        result = await translate(transcriber, audio, prompt)
    if response_format == "json":
        return JSONResponse({"text": result.text})
    return formatted(result, response_format, words=False, task="translate")


async def translate(transcriber: Transcriber, audio: Any, prompt: str | None) -> Result:
    """The pipeline's pieces, each translated; the language detected first is kept for the rest."""
    language: str | None = None
    texts: list[str] = []
    segments: list[Segment] = []
    for piece in transcriber.pieces(await transcriber.speech(audio), merge=True):
        request = TranscribeRequest(audio[piece.start : piece.end], language, prompt, task="translate")
        transcript = await transcriber.on_model_thread(transcriber.engine.transcribe, request)
        if language is None and transcript.language in transcriber.engine.languages:
            language = transcript.language
        texts.append(transcript.text)
        segments.extend(shift(transcript, piece.start / SAMPLE_RATE))
    return Result(join_texts(texts, "en"), "en", round(audio.size / SAMPLE_RATE, 3), segments)


def formatted(result: Result, response_format: ResponseFormat, *, words: bool, task: str) -> Response:
    """The text, srt, vtt and verbose_json answers of transcriptions and translations."""
    if response_format == "text":
        return PlainTextResponse(result.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(result))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    return JSONResponse(to_verbose_json(result, words=words, task=task))


@router.get("/v1/models")
async def models(transcriber: TranscriberDep) -> dict[str, Any]:
    """The engine's model and ``whisper-1``, the name OpenAI clients send (any name is accepted)."""
    return model_list([transcriber.engine.model_name, "whisper-1"])


async def transcription_stream(
    transcriber: Transcriber, file: UploadFile, code: str | None, prompt: str | None
) -> Response:
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


@router.websocket("/asr/ws")
async def asr_ws(websocket: WebSocket, transcriber: TranscriberDep) -> None:
    await websocket.accept()
    try:
        ticket = transcriber.acquire()
    except LingxiError as exc:
        await reject(websocket, exc)
        return
    try:
        await converse(websocket, transcriber)
    except WebSocketDisconnect:
        pass
    except LingxiError as exc:
        await reject(websocket, exc)
    finally:
        ticket.release()


async def reject(websocket: WebSocket, exc: LingxiError) -> None:
    try:
        await websocket.send_json({"type": "error", "error": exc.to_dict()})
        await websocket.close(CLOSE_CODES.get(exc.status_code, 1011), exc.message[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass


async def converse(websocket: WebSocket, transcriber: Transcriber) -> None:
    """Read frames and work on them side by side: the socket is read (and pings answered) while the model runs."""
    session = LiveSession(transcriber, websocket.send_json)
    reader = asyncio.create_task(read_frames(websocket, session))
    worker = asyncio.create_task(session.run())
    try:
        done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # the client's bad input, its disconnect or the engine's error
    finally:
        reader.cancel()
        worker.cancel()
    body = worker.result()
    await websocket.send_json(
        {
            "type": "final",
            "final": True,
            "text": body.text,
            "partial_text": body.text,
            "language": body.language,
            "duration": round(body.duration, 3),
            "emotion": body.emotion,
            "event": body.event,
        }  # fmt: skip
    )
    await websocket.close()


async def read_frames(websocket: WebSocket, session: LiveSession) -> None:
    """PCM16 frames into the session until ``{"event": "end"}``; a first JSON message may name the format."""
    transcriber = session.transcriber
    resample = Resampler(StreamFormat().sample_rate)
    first = True
    while True:
        await session.room()
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            session.add(resample(message["bytes"]))
        elif message.get("text") is not None:
            event = parse_json(message["text"])
            if event.get("event") == "end":
                session.end()
                return
            if first and session.buffer.total == 0:
                fmt = StreamFormat.parse(event)
                resample = Resampler(fmt.sample_rate)
                session.set_language(transcriber.check_language(fmt.language))
            else:
                raise BadRequest('send binary PCM16 frames, then {"event": "end"}')
        first = False


def parse_json(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("text messages must be JSON") from exc
    if not isinstance(event, dict):
        raise BadRequest("text messages must be JSON objects")
    return event
