"""The indextts engine, loaded through its real loading code from a stand-in index-tts checkout:
``indextts/infer_v2.py`` there defines ``IndexTTS2`` with the real constructor and ``infer``
signatures (IndexTTS2 itself cannot be installed here without its weights). The stand-in writes a
22.05 kHz PCM16 WAV, as IndexTTS2 does, and records every call."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for_health
from tests.tts.conftest import espeak_recording, wav_audio
from tts.app import create_app
from tts.audio import Audio, to_wav
from tts.config import Engine, Settings

STAND_IN = '''
"""Stand-in for index-tts's indextts/infer_v2.py: the same signatures, no model."""
import threading
import time
import wave

CALLS = []
STATE = {"active": 0, "max_active": 0, "delay": 0.0}
LOCK = threading.Lock()


class IndexTTS2:
    def __init__(
        self, cfg_path="checkpoints/config.yaml", model_dir="checkpoints", use_fp16=False, device=None,
        use_cuda_kernel=None, use_deepspeed=False, use_accel=False, use_torch_compile=False
    ):
        self.init = {"cfg_path": cfg_path, "model_dir": model_dir, "use_fp16": use_fp16, "device": device}

    def infer(self, spk_audio_prompt, text, output_path,
              emo_audio_prompt=None, emo_alpha=1.0,
              emo_vector=None,
              use_emo_text=False, emo_text=None, use_random=False, interval_silence=200,
              verbose=False, max_text_tokens_per_segment=120, stream_return=False, more_segment_before=0,
              **generation_kwargs):
        with LOCK:
            STATE["active"] += 1
            STATE["max_active"] = max(STATE["max_active"], STATE["active"])
        try:
            time.sleep(STATE["delay"])
            with open(spk_audio_prompt, "rb") as f:
                speaker = f.read()
            CALLS.append({"spk_audio_prompt": spk_audio_prompt, "speaker_bytes": speaker, "text": text,
                          "emo_audio_prompt": emo_audio_prompt, "generation_kwargs": generation_kwargs})
            frames = 22050 * len(text) // 20
            with wave.open(output_path, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(22050)
                out.writeframes(b"\\x10\\x00\\xf0\\xff" * (frames // 2))
        finally:
            with LOCK:
                STATE["active"] -= 1
        return output_path
'''


def tone(hz: float) -> bytes:
    import numpy as np

    t = np.arange(22050) / 22050
    return to_wav(Audio((0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16), 22050))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("index-tts")
    (root / "indextts").mkdir()
    (root / "indextts" / "__init__.py").write_text("")
    (root / "indextts" / "infer_v2.py").write_text(STAND_IN)
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "config.yaml").write_text("version: 2.0\n")
    (root / "examples").mkdir()
    (root / "examples" / "voice_01.wav").write_bytes(tone(120))
    (root / "examples" / "voice_02.wav").write_bytes(tone(220))
    (root / "styles").mkdir()
    (root / "styles" / "calm.wav").write_bytes(tone(180))
    return root


@pytest.fixture(scope="module")
def indextts(checkout):
    settings = Settings(
        engine=Engine.indextts,
        indextts_dir=checkout,
        checkpoints_dir=checkout / "checkpoints",
        styles_dir=checkout / "styles",
        queue_size=1,
        indextts_fp16=True,
    )
    app = create_app(settings)
    wait_for_health(app.test_client())
    stand_in = sys.modules["indextts.infer_v2"]
    yield app, stand_in
    sys.modules.pop("indextts.infer_v2", None)
    sys.modules.pop("indextts", None)
    sys.path.remove(str(checkout.resolve()))


@pytest.fixture
def calls(indextts):
    stand_in = indextts[1]
    stand_in.CALLS.clear()
    stand_in.STATE.update(delay=0.0, max_active=0)
    return stand_in.CALLS


def post(app, **form):
    return app.test_client().post("/synthesize", data=form, content_type="multipart/form-data")


def test_indextts_loads_the_checkout_with_the_checkpoints(indextts, checkout):
    app, _ = indextts
    model = app.extensions["tts"].engine.model
    assert model.init == {
        "cfg_path": str(checkout / "checkpoints" / "config.yaml"),
        "model_dir": str(checkout / "checkpoints"),
        "use_fp16": True,
        "device": None,
    }
    assert app.test_client().get("/styles").get_json()["styles"] == ["style1", "style2", "calm"]


def test_indextts_maps_a_seed_request_to_infer(indextts, checkout, calls):
    app, _ = indextts
    response = post(
        app, text="你好，这是调节参数后的TTS测试。Second sentence.", style="style1", temperature="0.6", top_p="0.9"
    )
    assert response.status_code == 200
    assert [call["text"] for call in calls] == ["你好，这是调节参数后的TTS测试。", "Second sentence."]
    for call in calls:
        assert call["spk_audio_prompt"] == str(checkout / "examples" / "voice_01.wav")
        assert call["emo_audio_prompt"] is None
        assert call["generation_kwargs"] == {"temperature": 0.6, "top_p": 0.9, "do_sample": True}
    audio = wav_audio(response.data)
    assert audio.sample_rate == 22050
    piece_frames = [22050 * len(call["text"]) // 20 // 2 * 2 for call in calls]
    assert audio.samples.size == sum(piece_frames) + 4410  # both pieces and a 200 ms pause between


def test_indextts_leaves_generation_defaults_alone_when_not_sent(indextts, calls):
    app, _ = indextts
    assert post(app, text="Plain request.", style="calm").status_code == 200
    assert calls[0]["generation_kwargs"] == {}
    assert calls[0]["spk_audio_prompt"].endswith("calm.wav")


def test_indextts_uses_the_uploaded_voice_as_speaker_and_the_style_as_emotion(indextts, checkout, calls):
    app, _ = indextts
    voice = espeak_recording("This is my own voice.", variant="f2", pitch=60, rate=170)
    assert post(app, text="Clone me.", prompt_audio=(io.BytesIO(voice), "me.wav")).status_code == 200
    assert calls[0]["speaker_bytes"] == voice and calls[0]["emo_audio_prompt"] is None
    assert post(app, text="Clone me.", style="style2", prompt_audio=(io.BytesIO(voice), "me.wav")).status_code == 200
    assert calls[1]["speaker_bytes"] == voice
    assert calls[1]["emo_audio_prompt"] == str(checkout / "examples" / "voice_02.wav")


def test_indextts_gets_other_containers_decoded_to_wav(indextts, calls):
    app, _ = indextts
    from tts.audio import encode, read_wav

    mp3 = encode(read_wav(espeak_recording("An mp3 voice.", variant="m3", pitch=50, rate=170)), "mp3")
    assert post(app, text="Clone me.", prompt_audio=(io.BytesIO(mp3), "me.mp3")).status_code == 200
    speaker = read_wav(calls[0]["speaker_bytes"])
    assert speaker.sample_rate == 16_000 and speaker.seconds > 0.5


def test_indextts_speed_is_applied_after_generation(indextts, calls):
    app, _ = indextts
    normal = wav_audio(post(app, text="A sentence to stretch in time.").data).seconds
    fast = wav_audio(post(app, text="A sentence to stretch in time.", speed="2").data).seconds
    assert fast == pytest.approx(normal / 2, rel=0.1)


def test_indextts_runs_one_generation_at_a_time_and_answers_429_when_the_queue_is_full(indextts, calls):
    app, stand_in = indextts
    stand_in.STATE["delay"] = 0.8
    statuses: list[int] = []

    def request() -> None:
        statuses.append(post(app, text="Busy.").status_code)

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    assert stand_in.STATE["max_active"] == 1
    assert sorted(statuses) == [200, 200, 429, 429, 429]  # one generating + queue_size=1 waiting
    assert app.extensions["tts"].admitted == 0


def test_indextts_without_checkpoints_is_not_configured(tmp_path):
    (tmp_path / "indextts").mkdir()
    (tmp_path / "indextts" / "infer_v2.py").write_text("")
    app = create_app(Settings(engine=Engine.indextts, indextts_dir=tmp_path))
    client = app.test_client()
    health = wait_for_health(client, settled=True)
    assert health.status_code == 503 and health.get_json()["status"] == "not_configured"
    assert "checkpoints" in health.get_json()["detail"]
    assert client.post("/synthesize", data={"text": "hi"}).status_code == 503
