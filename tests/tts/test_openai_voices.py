"""OpenAI's voices, formats and lists on tts, driven by the ``openai`` SDK as clients send them."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import openai
import pytest
from openai.types import Model

from services.media import decode_audio
from tests.tts.conftest import wav_audio
from tts.audio import read_wav
from tts.config import Settings
from tts.voices import OPENAI_VOICES

HELLO = "你好，世界"


@pytest.fixture(scope="module")
def sdk(espeak_server):
    return openai.OpenAI(base_url=f"{espeak_server.url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav"])
def test_every_openai_format_decodes_with_pyav(sdk, response_format):
    speech = sdk.audio.speech.create(model="tts-1", voice="alloy", input=HELLO, response_format=response_format)
    assert decode_audio(speech.content).size > 16_000 * 0.5  # PyAV reads it back: at least half a second


def test_pcm_is_raw_24khz_audio(sdk):
    pcm = sdk.audio.speech.create(model="tts-1", voice="alloy", input=HELLO, response_format="pcm").content
    samples = np.frombuffer(pcm, dtype="<i2")
    assert pcm[:4] != b"RIFF" and 0.5 < samples.size / 24_000 < 5 and np.abs(samples).max() > 1000


def test_openai_voices_speak_in_their_mapped_styles(client):
    def wav(voice):
        body = {"model": "tts-1", "voice": voice, "input": "Hello there.", "response_format": "wav"}
        response = client.post("/v1/audio/speech", json=body)
        assert response.status_code == 200, response.get_json()
        return response.data

    assert wav("alloy") == wav("style1") and wav("onyx") == wav("narrator") and wav("nova") == wav("female")
    assert wav({"id": "echo"}) == wav("male")  # the SDK's custom-voice object
    assert wav("shimmer") != wav("alloy")


def test_every_openai_voice_is_accepted(sdk):
    for voice in OPENAI_VOICES:
        speech = sdk.audio.speech.create(model="gpt-4o-mini-tts", voice=voice, input="Hi.", response_format="wav")
        assert wav_audio(speech.content).seconds > 0.2, voice


def test_instructions_are_accepted(sdk):
    speech = sdk.audio.speech.create(
        model="gpt-4o-mini-tts", voice="coral", input="Hello.", instructions="Speak cheerfully.", response_format="wav"
    )
    assert wav_audio(speech.content).seconds > 0.3


def test_sse_streams_base64_deltas_then_done(espeak_server):
    body = {"model": "tts-1", "voice": "alloy", "input": "First sentence. 第二句。", "stream_format": "sse"}
    for response_format in ("pcm", "wav"):
        answer = httpx.post(f"{espeak_server.url}/v1/audio/speech", json={**body, "response_format": response_format})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
        assert [e["type"] for e in events] == ["speech.audio.delta"] * (len(events) - 1) + ["speech.audio.done"]
        audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
        if response_format == "wav":
            assert read_wav(audio).seconds > 1.0
        else:
            assert len(audio) / (24_000 * 2) > 1.0
        assert len(events) >= 3  # one delta per sentence


def test_voice_and_model_lists_in_the_shapes_clients_read(client, sdk):
    voices = client.get("/v1/audio/voices").get_json()["voices"]
    ids = [voice["id"] for voice in voices]
    assert ids[:2] == ["style1", "style2"] and set(OPENAI_VOICES) <= set(ids)
    assert {"id": "alloy", "name": "alloy (style1)"} in voices  # Open WebUI shows the name
    assert {"id": "tts-1"} in client.get("/v1/audio/models").get_json()["models"]
    listed = [Model.model_validate(model.model_dump()).id for model in sdk.models.list()]
    assert listed == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]


def test_the_voice_map_is_a_setting():
    settings = Settings(_env_file=None, openai_voices="alloy=narrator, echo=style2")  # type: ignore[call-arg]
    assert settings.openai_voices == {"alloy": "narrator", "echo": "style2"}
    with pytest.raises(ValueError, match="voice=style"):
        Settings(_env_file=None, openai_voices="alloy")  # type: ignore[call-arg]


def test_a_mapped_style_the_engine_lacks_falls_back_to_the_default_style():
    from tts.voices import Voices

    voices = Voices({"alloy": "narrator"}, "style1")
    assert voices.style_of("alloy", ["style1", "style2"]) == "style1"  # e.g. an IndexTTS2 box without narrator.wav
    assert voices.style_of("style2", ["style1", "style2"]) == "style2"
