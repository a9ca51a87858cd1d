"""tts routes (Flask): parse → the synthesizer → the seed's response.

Seed: ``POST /synthesize`` (multipart: text, style, prompt_audio, temperature, top_p) → audio/wav,
``GET /health``. Added: ``GET /styles``, ``stream=true`` on /synthesize, and OpenAI's
``POST /v1/audio/speech`` (OpenAI's voice names through ``tts.voices``; ``stream_format=sse`` for pcm
and wav), ``GET /v1/audio/voices``, ``GET /v1/audio/models`` and ``GET /v1/models``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, request

from services.errors import BadRequest, PayloadTooLarge
from services.media import AudioLimits, decode_audio
from services.openai_models import model_list
from tts.audio import Audio, available_formats, encode, pcm_bytes, resample, to_wav
from tts.config import Settings
from tts.engines.base import PromptAudio, SynthesisRequest
from tts.synthesis import Synthesizer, WavStream
from tts.text import split_sentences
from tts.voice_match import VoiceMatch
from tts.voices import TTS_MODELS, Voices

MEDIA_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "pcm": "audio/pcm",
}
SSE_FORMATS = ("pcm", "wav")  # streamed sentence by sentence; the other containers cannot be cut into deltas
OPENAI_PCM_RATE = 24_000  # OpenAI's pcm format: 24 kHz, 16-bit little-endian, mono
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
EXTENSION = "tts"  # the app's synthesizer is its extension of this name
blueprint = Blueprint("tts", __name__)
formats = cache(available_formats)
voice_match = cache(VoiceMatch)


def current_synthesizer() -> Synthesizer:
    return current_app.extensions[EXTENSION]


def sentences_of(text: Any, field: str, settings: Settings) -> list[str]:
    if text is None:
        raise BadRequest(f"missing the text to synthesise (field '{field}')")
    if not isinstance(text, str):
        raise BadRequest(f"{field} must be a string")
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    if not text.strip():
        raise BadRequest("text is empty")
    if len(text) > settings.max_text_chars:
        raise PayloadTooLarge(f"text is {len(text)} characters; the limit is {settings.max_text_chars}")
    sentences = split_sentences(text, settings.max_sentence_chars)
    if not sentences:
        raise BadRequest("text has no words to speak (only punctuation)")
    return sentences


def style_of(value: Any, synthesizer: Synthesizer) -> tuple[str, bool]:
    if value is None or value == "":
        return synthesizer.settings.default_style, False
    if not isinstance(value, str):
        raise BadRequest("style must be a string")
    synthesizer.check_style(value)
    return value, True


@blueprint.get("/styles")
def styles() -> Any:
    synthesizer = current_synthesizer()
    return {"styles": synthesizer.styles(), "default": synthesizer.settings.default_style}


def voices_of(synthesizer: Synthesizer) -> Voices:
    return Voices(synthesizer.settings.openai_voices, synthesizer.settings.default_style)


@blueprint.get("/v1/audio/voices")
def openai_voices() -> Any:
    synthesizer = current_synthesizer()
    return {"voices": voices_of(synthesizer).listing(synthesizer.styles())}


@blueprint.get("/v1/audio/models")
def openai_audio_models() -> Any:
    return {"models": [{"id": name} for name in TTS_MODELS]}


@blueprint.get("/v1/models")
def openai_models() -> Any:
    return model_list(TTS_MODELS)


@blueprint.post("/synthesize")
def synthesize() -> Response:
    synthesizer = current_synthesizer()
    form = request.form
    sentences = sentences_of(form.get("text"), "text", synthesizer.settings)
    style, explicit = style_of(form.get("style"), synthesizer)
    synthesis = SynthesisRequest(
        text="",
        style=style,
        style_explicit=explicit,
        prompt_audio=prompt_audio_of(synthesizer.settings),
        temperature=number(form.get("temperature"), "temperature", 0.0, 2.0, low_open=True),
        top_p=number(form.get("top_p"), "top_p", 0.0, 1.0, low_open=True),
        speed=number(form.get("speed"), "speed", 0.25, 4.0) or 1.0,
    )
    headers = {"Content-Disposition": 'attachment; filename="output.wav"'}
    if flag(form.get("stream"), "stream"):
        body = synthesizer.stream_wav(synthesis, sentences)
        return Response(body, mimetype="audio/wav", headers={**headers, "X-Accel-Buffering": "no"})
    audio = synthesizer.synthesize(synthesis, sentences)
    if synthesis.prompt_audio is not None:
        similarity = voice_match().similarity(synthesis.prompt_audio.samples, audio)
        if similarity is not None:
            headers["X-Voice-Similarity"] = f"{similarity:.3f}"  # speaker-embedding cosine, reference vs output
    return Response(to_wav(audio), mimetype="audio/wav", headers=headers)


@blueprint.post("/v1/audio/speech")
def openai_speech() -> Response:
    synthesizer = current_synthesizer()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object: {model, input, voice, response_format, speed}")
    sentences = sentences_of(body.get("input"), "input", synthesizer.settings)
    style, explicit = openai_style_of(body.get("voice"), synthesizer)
    response_format = body.get("response_format") or ("mp3" if "mp3" in formats() else "wav")
    if response_format not in formats():
        raise BadRequest(f"unsupported response_format {response_format!r}; supported: {', '.join(formats())}")
    stream_format = body.get("stream_format") or "audio"
    if stream_format not in ("audio", "sse"):
        raise BadRequest(f"unsupported stream_format {stream_format!r}; supported: audio, sse")
    if stream_format == "sse" and response_format not in SSE_FORMATS:
        raise BadRequest(f"stream_format 'sse' streams response_format pcm or wav, not {response_format!r}")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("instructions must be a string")
    speed = number(body.get("speed"), "speed", 0.25, 4.0) or 1.0
    synthesis = SynthesisRequest(
        text="", style=style, style_explicit=explicit, speed=speed, instructions=instructions or None
    )
    if stream_format == "sse":
        events = sse_events(synthesizer.stream_wav(synthesis, sentences), response_format, len(body["input"]))
        return Response(events, mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})
    audio = synthesizer.synthesize(synthesis, sentences)
    if response_format == "pcm":
        audio = resample(audio, OPENAI_PCM_RATE)
    return Response(
        encode(audio, response_format),
        mimetype=MEDIA_TYPES[response_format],
        headers={"Content-Disposition": f'attachment; filename="speech.{response_format}"'},
    )


def openai_style_of(value: Any, synthesizer: Synthesizer) -> tuple[str, bool]:
    """The style an OpenAI ``voice`` (a name, or ``{"id": name}``) speaks in."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return synthesizer.settings.default_style, False
    if not isinstance(value, str):
        raise BadRequest('voice must be a string (or {"id": "<voice>"})')
    return voices_of(synthesizer).style_of(value, synthesizer.styles()), True


def sse_events(stream: WavStream, response_format: str, input_chars: int) -> Iterator[str]:
    """OpenAI's speech SSE: ``speech.audio.delta`` events of base64 audio, one per sentence, then
    ``speech.audio.done``. pcm is resampled to OpenAI's 24 kHz; wav is the streamed WAV."""
    rate = stream.first.sample_rate
    try:
        for index, chunk in enumerate(stream):
            if response_format == "pcm":
                samples = np.frombuffer(chunk[44:] if index == 0 else chunk, dtype="<i2")
                chunk = pcm_bytes(resample(Audio(samples, rate), OPENAI_PCM_RATE))
            yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")})
        usage = {"input_tokens": input_chars, "output_tokens": 0, "total_tokens": input_chars}
        yield sse({"type": "speech.audio.done", "usage": usage})
    finally:
        stream.close()


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"


def prompt_audio_of(settings: Settings) -> PromptAudio | None:
    upload = request.files.get("prompt_audio")
    if upload is None:
        if request.form.get("prompt_audio"):
            raise BadRequest("prompt_audio must be a file upload (curl -F 'prompt_audio=@voice.wav')")
        return None
    data = upload.read(settings.prompt_audio_max_bytes + 1)
    if not data and not upload.filename:
        return None  # an empty file field, as HTML forms send when no file is chosen
    limits = AudioLimits(max_bytes=settings.prompt_audio_max_bytes, max_seconds=settings.prompt_audio_max_seconds)
    samples = decode_audio(data, limits)
    if samples.size < 16_000 // 2:
        raise BadRequest("prompt_audio is shorter than half a second")
    return PromptAudio(data=data, samples=samples)


def number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float | None:
    """A form/JSON number within [low, high] ((low, high] with ``low_open``); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a number")
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, not {str(value)[:40]!r}") from None
    too_low = parsed <= low if low_open else parsed < low
    if not parsed == parsed or too_low or parsed > high:  # NaN fails parsed == parsed
        bracket = "(" if low_open else "["
        raise BadRequest(f"{name} must be in {bracket}{low:g}, {high:g}], not {str(value)[:40]}")
    return parsed


def flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadRequest(f"{name} must be true or false, not {str(value)[:40]!r}")
