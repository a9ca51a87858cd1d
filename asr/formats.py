"""OpenAI ``/v1/audio/transcriptions`` and ``/v1/audio/translations`` response formats: json, text, srt,
vtt, verbose_json, and diarized_json for transcriptions."""

from __future__ import annotations

from typing import Any

from asr.diarize import SpokenSegment
from asr.pipeline import Result

LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "yue": "cantonese", "ja": "japanese", "ko": "korean", "de": "german",
    "fr": "french", "es": "spanish", "ru": "russian", "it": "italian", "pt": "portuguese", "nl": "dutch",
    "ar": "arabic", "hi": "hindi", "tr": "turkish", "pl": "polish", "vi": "vietnamese", "th": "thai",
    "id": "indonesian", "uk": "ukrainian", "sv": "swedish", "cs": "czech", "el": "greek", "he": "hebrew",
}  # fmt: skip


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code or "", code or "")


def timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(result: Result) -> str:
    blocks = []
    for number, segment in enumerate(result.segments, start=1):
        span = f"{timestamp(segment.start, ',')} --> {timestamp(segment.end, ',')}"
        blocks.append(f"{number}\n{span}\n{segment.text}\n")
    return "\n".join(blocks)


def to_vtt(result: Result) -> str:
    blocks = ["WEBVTT\n"]
    for segment in result.segments:
        blocks.append(f"{timestamp(segment.start, '.')} --> {timestamp(segment.end, '.')}\n{segment.text}\n")
    return "\n".join(blocks)


def to_verbose_json(result: Result, *, words: bool, task: str = "transcribe") -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(result.language),
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "id": index,
                "seek": 0,
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
                "text": segment.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": segment.avg_logprob,
                "compression_ratio": segment.compression_ratio,
                "no_speech_prob": segment.no_speech_prob,
            }
            for index, segment in enumerate(result.segments)
        ],
        "usage": {"type": "duration", "seconds": round(result.duration)},
    }
    if words:
        body["words"] = [
            {"word": word.word.strip(), "start": round(word.start, 3), "end": round(word.end, 3)}
            for segment in result.segments
            for word in segment.words
        ]
    return body


def to_diarized_json(result: Result, spoken: list[SpokenSegment]) -> dict[str, Any]:
    """OpenAI's ``TranscriptionDiarized``: segments with ``speaker``, ``start``, ``end`` and ``text``."""
    return {
        "task": "transcribe",
        "duration": result.duration,
        "text": result.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{index}",
                "start": round(item.segment.start, 3),
                "end": round(item.segment.end, 3),
                "text": item.segment.text.strip(),
                "speaker": item.speaker or "A",
            }
            for index, item in enumerate(spoken)
        ],
        "usage": {"type": "duration", "seconds": round(result.duration)},
    }
