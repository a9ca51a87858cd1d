"""Every bad input gets a 4xx JSON error that names the problem; nothing produces a 500."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tts.audio import Audio, to_wav


def tone_wav(seconds: float, rate: int = 16_000, hz: float = 0.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
    return to_wav(Audio(samples, rate))


def upload(data: bytes, name: str = "voice.wav"):
    return (io.BytesIO(data), name)


BAD_FORMS = [
    ({}, 400, "field 'text'"),
    ({"text": ""}, 400, "empty"),
    ({"text": "   \n\t "}, 400, "empty"),
    ({"text": "\x00\x01\x02"}, 400, "empty"),
    ({"text": "... !!! 。。。"}, 400, "no words"),
    ({"text": "hello", "style": "style9"}, 400, "style1, style2"),
    ({"text": "hello", "temperature": "hot"}, 400, "temperature must be a number"),
    ({"text": "hello", "temperature": "nan"}, 400, "temperature"),
    ({"text": "hello", "temperature": "inf"}, 400, "temperature"),
    ({"text": "hello", "temperature": "0"}, 400, "temperature"),
    ({"text": "hello", "temperature": "-1"}, 400, "temperature"),
    ({"text": "hello", "temperature": "2.5"}, 400, "temperature"),
    ({"text": "hello", "top_p": "1.01"}, 400, "top_p"),
    ({"text": "hello", "top_p": "0"}, 400, "top_p"),
    ({"text": "hello", "top_p": "[1]"}, 400, "top_p must be a number"),
    ({"text": "hello", "speed": "10"}, 400, "speed"),
    ({"text": "hello", "stream": "perhaps"}, 400, "stream"),
    ({"text": "hello", "prompt_audio": "not a file"}, 400, "file upload"),
    ({"text": "hello", "prompt_audio": upload(b"plain text, not audio", "voice.txt")}, 415, "audio"),
    ({"text": "hello", "prompt_audio": upload(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" * 3)}, None, ""),
    ({"text": "hello", "prompt_audio": upload(tone_wav(0.2, hz=150))}, 400, "shorter"),
    ({"text": "hello", "prompt_audio": upload(tone_wav(2.0, hz=0))}, 400, "voiced"),
    ({"text": "hello", "prompt_audio": upload(tone_wav(61.0, hz=150))}, 413, "60 seconds"),
]


@pytest.mark.parametrize("form, status, message", BAD_FORMS)
def test_tts_rejects_bad_synthesize_input(client, form, status, message):
    response = client.post("/synthesize", data=form, content_type="multipart/form-data")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    if status is not None:
        assert response.status_code == status
    error = response.get_json()["error"]
    assert message.lower() in error["message"].lower()


def test_tts_rejects_a_too_large_prompt_audio(client):
    big = upload(b"RIFF" + b"\x00" * (10 * 1024 * 1024 + 10))
    response = client.post("/synthesize", data={"text": "hi", "prompt_audio": big}, content_type="multipart/form-data")
    assert response.status_code == 413


BAD_SPEECH = [
    ("not json", 400, "JSON"),
    ([1, 2], 400, "JSON"),
    ({"model": "tts-1", "voice": "style1"}, 400, "field 'input'"),
    ({"input": 42, "voice": "style1"}, 400, "input must be a string"),
    ({"input": " ", "voice": "style1"}, 400, "empty"),
    ({"input": "hi", "voice": "no-such-voice"}, 400, "style1, style2"),
    ({"input": "hi", "voice": "no-such-voice"}, 400, "alloy, ash"),
    ({"input": "hi", "voice": ["style1"]}, 400, "voice must be a string"),
    ({"input": "hi", "response_format": "ogg"}, 400, "mp3"),
    ({"input": "hi", "instructions": 42}, 400, "instructions must be a string"),
    ({"input": "hi", "speed": 0.1}, 400, "speed"),
    ({"input": "hi", "speed": "fast"}, 400, "speed"),
    ({"input": "hi", "speed": True}, 400, "speed"),
    ({"input": "hi", "stream_format": "sse"}, 400, "stream_format"),
    ({"input": "hi", "stream_format": "sse", "response_format": "flac"}, 400, "pcm or wav"),
    ({"input": "hi", "stream_format": "chunks"}, 400, "audio, sse"),
    ({"input": "x" * 3001}, 413, "3000"),
]


@pytest.mark.parametrize("body, status, message", BAD_SPEECH)
def test_tts_rejects_bad_openai_speech_input(client, body, status, message):
    if isinstance(body, str):
        response = client.post("/v1/audio/speech", data=body, content_type="application/json")
    else:
        response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert message.lower() in response.get_json()["error"]["message"].lower()


@pytest.mark.parametrize(
    "text",
    ["😀😀 emoji only? 😀", "a" * 1500, "-v en --stdout", "<speak>ssml?</speak>", "１２３ 。。 mixed 中文 and 한국어"],
)
def test_tts_odd_text_never_crashes(client, text):
    response = client.post("/synthesize", data={"text": text}, content_type="multipart/form-data")
    assert response.status_code < 500
    if response.status_code == 200:
        assert response.data[:4] == b"RIFF"


def test_tts_wrong_method_is_a_json_405(client):
    response = client.get("/synthesize")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
