"""OpenAI's audio API: ``/v1/audio/transcriptions`` (every response format, SSE streaming, speakers),
``/v1/audio/translations`` (to English, where the engine translates) and ``/v1/models``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from asr.diarize import SpeakerOptions, check_chunking_strategy, references
from asr.engines.base import SAMPLE_RATE, Segment, TranscribeRequest
from asr.formats import to_diarized_json, to_srt, to_verbose_json, to_vtt
from asr.pipeline import Collector, Result, Transcriber, join_texts, shift
from asr.routes.common import DiarizerDep, SpeakerCount, TranscriberDep, with_release
from services.errors import BadRequest
from services.openai_models import model_list
from services.streaming import sse_response

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
router = APIRouter()


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
