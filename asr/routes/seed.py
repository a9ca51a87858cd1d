"""The seed API: ``POST /asr`` (one answer) and ``POST /asr/stream`` (NDJSON lines as the text grows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from asr.diarize import Diarizer, SpeakerOptions, attribute, seed_speakers, speaker_at
from asr.engines.base import SAMPLE_RATE
from asr.pipeline import Collector, Result, Transcriber
from asr.routes.common import DiarizerDep, SpeakerCount, TranscriberDep, with_release
from services.streaming import ndjson_response

router = APIRouter()


def seed_body(result: Result) -> dict[str, Any]:
    body: dict[str, Any] = {"text": result.text, "language": result.language, "duration": result.duration}
    if result.emotion is not None:
        body["emotion"] = result.emotion
    if result.event is not None:
        body["event"] = result.event
    body["segments"] = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text} for s in result.segments]
    return body


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
