"""POST /synthesize with the espeak engine: the seed's contract and what a listener would notice."""

from __future__ import annotations

import asyncio
import io
import struct

import numpy as np
import pytest

from asr.config import Settings as AsrSettings
from asr.engines.base import TranscribeRequest
from asr.engines.whisper import WhisperEngine
from tests.asr.speech import word_error_rate
from tests.conftest import wait_for_health
from tests.tts.conftest import espeak_recording, to_16k_float, wav_audio
from tts.app import create_app
from tts.audio import median_f0
from tts.config import Engine, Settings

SENTENCE = "The weather is nice today, so we will go for a walk in the park."


@pytest.fixture(scope="session")
def whisper() -> WhisperEngine:
    """The asr service's own engine with the embedded Whisper base."""
    engine = WhisperEngine(AsrSettings())
    asyncio.run(engine.start())
    return engine


def synthesize(client, **form):
    response = client.post("/synthesize", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_tts_round_trip_through_whisper_keeps_the_words(client, whisper):
    response = synthesize(client, text=SENTENCE)
    heard = whisper.transcribe(TranscribeRequest(to_16k_float(wav_audio(response.data)), language="en")).text
    assert word_error_rate(SENTENCE, heard) <= 0.5, heard


def test_tts_answers_a_valid_pcm16_wav_with_a_filename(client):
    response = synthesize(client, text="你好，这是默认风格的测试", style="style2")
    assert response.mimetype == "audio/wav"
    assert 'filename="output.wav"' in response.headers["Content-Disposition"]
    data = response.data
    riff_size, fmt_size, fmt, channels, rate, byte_rate, align, bits = struct.unpack("<I4x4xIHHIIHH", data[4:36])
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and data[36:40] == b"data"
    assert (fmt_size, fmt, channels, bits, align) == (16, 1, 1, 16, 2)
    assert byte_rate == rate * 2 and riff_size == len(data) - 8
    assert struct.unpack("<I", data[40:44])[0] == len(data) - 44
    assert wav_audio(data).seconds > 1.0


def test_tts_duration_grows_with_text_length(client):
    short = wav_audio(synthesize(client, text="Good morning.").data).seconds
    longer = wav_audio(synthesize(client, text="Good morning. " * 4 + "How are you all doing today?").data).seconds
    assert longer > 3 * short


def test_tts_long_text_is_split_into_sentences_with_pauses(client):
    one = wav_audio(synthesize(client, text="Hello there").data).seconds
    three = wav_audio(synthesize(client, text="Hello there. 你好。Hello there!").data)
    samples = np.abs(three.samples.astype(np.int32))
    frames = samples[: samples.size // 220 * 220].reshape(-1, 220).max(axis=1)  # 10 ms frames
    silent_runs, run = 0, 0
    for loud in frames > 300:
        run = 0 if loud else run + 1
        silent_runs += run == 15  # a pause of at least 150 ms
    assert silent_runs >= 2
    assert three.seconds > 2 * one


def test_tts_reads_chinese_with_the_mandarin_voice(client):
    chinese = wav_audio(synthesize(client, text="今天天气很好").data)
    latin_reading = wav_audio(synthesize(client, text="jin tian tian qi hen hao").data)
    assert chinese.seconds > 0.8
    assert not np.array_equal(chinese.samples[:1000], latin_reading.samples[:1000])


def test_tts_style1_and_style2_sound_different(client):
    one = wav_audio(synthesize(client, text=SENTENCE, style="style1").data)
    two = wav_audio(synthesize(client, text=SENTENCE, style="style2").data)
    f0_one, f0_two = median_f0(one.samples, one.sample_rate), median_f0(two.samples, two.sample_rate)
    assert f0_one and f0_two and f0_two > 1.3 * f0_one


def test_tts_default_style_is_used_when_none_is_named(client):
    default = synthesize(client, text="Default style.").data
    assert default == synthesize(client, text="Default style.", style="style1").data


def test_tts_styles_lists_style1_and_style2(client):
    body = client.get("/styles").get_json()
    assert {"style1", "style2"} <= set(body["styles"]) and body["default"] == "style1"


def reference(pitch: int, variant: str, rate: int = 175) -> tuple[bytes, float]:
    data = espeak_recording(
        "I am recording my own voice as a reference for you.", variant=variant, pitch=pitch, rate=rate
    )
    audio = wav_audio(data)
    f0 = median_f0(audio.samples, audio.sample_rate)
    assert f0
    return data, f0


def test_tts_follows_the_pitch_of_the_reference_recording(client):
    low, low_f0 = reference(pitch=5, variant="m3")
    high, high_f0 = reference(pitch=90, variant="f4")
    assert high_f0 > 2 * low_f0
    outputs = {}
    for name, data in (("low", low), ("high", high)):
        response = synthesize(client, text=SENTENCE, prompt_audio=(io.BytesIO(data), f"{name}.wav"))
        audio = wav_audio(response.data)
        outputs[name] = median_f0(audio.samples, audio.sample_rate)
    assert outputs["high"] > 1.8 * outputs["low"]
    for name, ref_f0 in (("low", low_f0), ("high", high_f0)):
        assert 0.75 < outputs[name] / ref_f0 < 1.33, (name, outputs[name], ref_f0)


def test_tts_follows_the_speaking_rate_of_the_reference_recording(client):
    slow, _ = reference(pitch=50, variant="m3", rate=110)
    fast, _ = reference(pitch=50, variant="m3", rate=320)
    durations = {}
    for name, data in (("slow", slow), ("fast", fast)):
        response = synthesize(client, text=SENTENCE, prompt_audio=(io.BytesIO(data), f"{name}.wav"))
        durations[name] = wav_audio(response.data).seconds
    assert durations["slow"] > 1.5 * durations["fast"]


def test_tts_text_limit_is_413(client):
    response = client.post("/synthesize", data={"text": "a" * 3001}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "3000" in response.get_json()["error"]["message"]


def test_tts_accepts_temperature_and_top_p_as_in_the_seed(client):
    response = synthesize(client, text="你好，这是调节参数后的TTS测试", style="style1", temperature="0.6", top_p="0.9")
    assert wav_audio(response.data).seconds > 1.0


def test_tts_health_is_the_seeds_shape(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_tts_without_espeak_ng_says_how_to_install_it():
    app = create_app(Settings(engine=Engine.espeak, espeak_binary="/nonexistent/espeak-ng"))
    client = app.test_client()
    health = wait_for_health(client, settled=True)
    assert health.status_code == 503 and "apt-get install espeak-ng" in health.get_json()["detail"]
    response = client.post("/synthesize", data={"text": "hi"}, content_type="multipart/form-data")
    assert response.status_code == 503 and "apt-get install espeak-ng" in response.get_json()["error"]["message"]


def test_tts_reports_how_close_the_voice_is_to_the_reference(client):
    from services.speaker_encoder import cosine
    from tts.routes import voice_match

    data, _ = reference(pitch=90, variant="f4")
    cloned = synthesize(client, text=SENTENCE, prompt_audio=(io.BytesIO(data), "me.wav"))
    plain = synthesize(client, text=SENTENCE)
    assert "X-Voice-Similarity" not in plain.headers
    similarity = float(cloned.headers["X-Voice-Similarity"])
    encoder = voice_match().encoder
    assert encoder is not None
    ref, without = encoder.embed([to_16k_float(wav_audio(data)), to_16k_float(wav_audio(plain.data))])
    baseline = cosine(ref, without)
    assert -1 <= similarity <= 1 and similarity > baseline, (similarity, baseline)
