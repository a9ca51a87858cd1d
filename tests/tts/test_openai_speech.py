"""POST /v1/audio/speech: the openai SDK works against it unchanged."""

from __future__ import annotations

import openai
import pytest

from services.media import decode_audio
from tests.tts.conftest import wav_audio


@pytest.fixture(scope="module")
def sdk(espeak_server):
    return openai.OpenAI(base_url=f"{espeak_server.url}/v1", api_key="unused", max_retries=0)


def test_openai_sdk_speech_returns_wav(sdk):
    speech = sdk.audio.speech.create(model="tts-1", voice="style2", input="Hello from lingxi.", response_format="wav")
    audio = wav_audio(speech.content)
    assert audio.seconds > 0.8


@pytest.mark.parametrize(
    "response_format, media_type", [("mp3", "audio/mpeg"), ("flac", "audio/flac"), ("opus", "audio/ogg")]
)
def test_openai_speech_encodes_compressed_formats(client, response_format, media_type):
    response = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "Hello there.", "response_format": response_format}
    )
    assert response.status_code == 200 and response.mimetype == media_type
    assert decode_audio(response.data).size > 16_000 * 0.5


def test_openai_speech_defaults_to_mp3_like_openai(client):
    response = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there."})
    assert response.status_code == 200 and response.mimetype == "audio/mpeg"


def test_openai_speech_pcm_is_24khz_16bit(client):
    wav = client.post("/v1/audio/speech", json={"input": "Hello there.", "response_format": "wav"}).data
    pcm = client.post("/v1/audio/speech", json={"input": "Hello there.", "response_format": "pcm"}).data
    seconds = wav_audio(wav).seconds
    assert abs(len(pcm) / (24_000 * 2) - seconds) < 0.01


def test_openai_speech_speed_changes_the_duration(client):
    def seconds(speed):
        body = {"input": "A sentence of moderate length for timing.", "response_format": "wav", "speed": speed}
        return wav_audio(client.post("/v1/audio/speech", json=body).data).seconds

    assert seconds(0.5) > 1.6 * seconds(1.0) > 1.6 * seconds(2.0)
