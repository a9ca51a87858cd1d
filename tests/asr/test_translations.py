"""/v1/audio/translations (speech in any language → English text) and /v1/models, through the openai SDK."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types import Model
from openai.types.audio import Translation, TranslationVerbose

from tests.asr.speech import speak_chinese

MANDARIN = "我爱我的妈妈。"  # Whisper base translates espeak's Mandarin of this as "I love my mother"


@pytest.fixture(scope="module")
def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def mandarin_wav(audio_dir: Path) -> Path:
    return speak_chinese(MANDARIN, audio_dir / "mandarin.wav")


def test_mandarin_speech_is_translated_to_english(sdk, mandarin_wav):
    with open(mandarin_wav, "rb") as audio:
        translation = sdk.audio.translations.create(model="whisper-1", file=audio)
    assert isinstance(translation, Translation)
    assert "love" in translation.text.lower() and "mother" in translation.text.lower(), translation.text


def test_translation_response_formats(sdk, mandarin_wav):
    def translate(response_format):
        return sdk.audio.translations.create(
            model="whisper-1", file=mandarin_wav.read_bytes(), response_format=response_format, prompt="", temperature=0
        )

    verbose = translate("verbose_json")
    assert isinstance(verbose, TranslationVerbose) and verbose.language == "english" and "mother" in verbose.text
    assert verbose.segments and verbose.segments[0].end > verbose.segments[0].start and verbose.duration > 0.5
    assert "mother" in translate("text").lower()
    assert translate("srt").startswith("1\n00:00:0") and translate("vtt").startswith("WEBVTT")


def test_translation_bad_input_is_a_clear_4xx(sdk, client):
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.audio.translations.create(model="whisper-1", file=("notes.txt", b"not audio", "text/plain"))
    assert caught.value.status_code == 415 and "not a recognised audio file" in caught.value.message
    response = client.post(
        "/v1/audio/translations", files={"file": ("a.wav", b"RIFF")}, data={"response_format": "mp3"}
    )
    assert response.status_code in (400, 422) and "response_format" in response.text


def test_models_lists_the_engine_model_and_whisper_1(sdk):
    listed = [Model.model_validate(model.model_dump()).id for model in sdk.models.list()]
    assert listed == ["whisper-base", "whisper-1"]


def test_the_upstream_engine_translates_through_the_upstreams_translations(server, mandarin_wav):
    from tests.asr.test_upstream import upstream_client

    client = upstream_client(f"{server.url}/v1")
    try:
        response = client.post("/v1/audio/translations", files={"file": ("m.wav", mandarin_wav.read_bytes())})
        assert response.status_code == 200 and "mother" in response.json()["text"].lower(), response.text
    finally:
        client.__exit__(None, None, None)
