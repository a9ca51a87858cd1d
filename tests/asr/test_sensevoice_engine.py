"""engine=sensevoice: funasr loads a tiny SenseVoiceSmall from a local dir and the service runs it.

With random weights the words are noise, so these tests check what the code does with whatever the
model says: tags parsed into fields and removed, seed shapes, segment times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from asr.app import create_app
from asr.config import Settings

pytest.importorskip("funasr", reason="the sensevoice extra (funasr) is not installed")

from tests.asr.tiny_sensevoice import build_tiny_fsmn_vad, build_tiny_sensevoice  # noqa: E402
from tests.conftest import wait_for_health  # noqa: E402


def started(settings: Settings) -> TestClient:
    client = TestClient(create_app(settings))
    client.__enter__()
    wait_for_health(client, settled=True, timeout_s=180)
    return client


@pytest.fixture(scope="module")
def random_sensevoice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("sensevoice")
    model_dir = build_tiny_sensevoice(root / "SenseVoiceSmall")
    vad_dir = build_tiny_fsmn_vad(root / "fsmn-vad")
    client = started(Settings(engine="sensevoice", model_dir=model_dir, vad_dir=vad_dir, device="cpu"))
    yield client
    client.__exit__(None, None, None)


def test_sensevoice_engine_loads_a_local_model_dir(random_sensevoice):
    health = random_sensevoice.get("/health")
    assert health.status_code == 200, health.json()
    assert health.json() == {"engine": "sensevoice", "model": "SenseVoiceSmall", "status": "ok"}


def test_sensevoice_transcription_has_no_tags_left_in_the_text(random_sensevoice, sentences_wav):
    response = random_sensevoice.post("/asr", files={"file": ("s.wav", sentences_wav.read_bytes())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["text"], str) and "<|" not in body["text"] and "|>" not in body["text"]
    assert body["language"] in {None, "zh", "en", "yue", "ja", "ko"}
    assert 5 < body["duration"] < 15
    assert all(s["start"] < s["end"] <= body["duration"] + 0.01 for s in body["segments"])


def test_sensevoice_fsmn_vad_cuts_the_file_at_the_pauses(random_sensevoice, sentences_wav):
    from services.media import decode_audio

    engine = random_sensevoice.app.state.transcriber.engine
    spans = engine.speech_spans(decode_audio(sentences_wav.read_bytes()))
    assert len(spans) == 3, spans  # three sentences with 0.9 s pauses between them
    assert all(a.end < b.start for a, b in zip(spans, spans[1:], strict=False))


def test_sensevoice_stream_and_language_choice(random_sensevoice, sentences_wav):
    response = random_sensevoice.post(
        "/asr/stream", files={"file": ("s.wav", sentences_wav.read_bytes())}, data={"language": "zh"}
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 4 and lines[-1]["final"] is True  # one line per fsmn-vad segment, then the final
    bad = random_sensevoice.post("/asr", files={"file": ("s.wav", sentences_wav.read_bytes())}, data={"language": "fr"})
    assert bad.status_code == 400 and "not supported by the sensevoice engine" in bad.json()["error"]["message"]


def test_sensevoice_language_tag_reaches_the_response(tmp_path: Path, short_wav):
    directory = build_tiny_sensevoice(tmp_path / "SenseVoiceSmall", always_say="<|en|>")
    client = started(Settings(engine="sensevoice", model_dir=directory, device="cpu"))
    try:
        body = client.post("/asr", files={"file": ("s.wav", short_wav.read_bytes())}).json()
        assert body["language"] == "en" and body["text"] == ""
    finally:
        client.__exit__(None, None, None)


def test_sensevoice_without_a_model_dir_says_what_to_set():
    client = started(Settings(engine="sensevoice"))
    try:
        body = client.get("/health").json()
        assert body["status"] == "error" and "ASR_MODEL_DIR" in body["detail"]
    finally:
        client.__exit__(None, None, None)


def test_sensevoice_segments_get_speakers_with_diarize(random_sensevoice):
    from asr.engines.upstream import to_wav
    from tests.asr.speech import conversation

    audio, _ = conversation(2, 4, seed=1)
    response = random_sensevoice.post("/asr", files={"file": ("t.wav", to_wav(audio))}, data={"diarize": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["speakers"]) <= {"A", "B"}
    assert all(segment["speaker"] in body["speakers"] for segment in body["segments"]), body


def test_sensevoice_says_it_cannot_translate(random_sensevoice, short_wav):
    response = random_sensevoice.post("/v1/audio/translations", files={"file": ("s.wav", short_wav.read_bytes())})
    assert response.status_code == 400 and "cannot translate" in response.json()["error"]["message"]


def test_sensevoice_live_socket_sends_its_one_pass_as_partials_without_drafts(random_sensevoice, sentences_wav):
    from asr.pipeline import join_texts
    from tests.asr.test_live import pcm16

    pcm = pcm16(sentences_wav)
    with random_sensevoice.websocket_connect("/asr/ws") as socket:
        for start in range(0, len(pcm), 3200):
            socket.send_bytes(pcm[start : start + 3200])
        socket.send_text(json.dumps({"event": "end"}))
        messages = [socket.receive_json()]
        while messages[-1]["type"] not in ("final", "error"):
            messages.append(socket.receive_json())
    assert messages[-1]["type"] == "final" and 5 < messages[-1]["duration"] < 15, messages
    assert not [m for m in messages if m["type"] == "draft"]  # no cheaper pass: no drafts
    partials = [m for m in messages if m["type"] == "partial"]
    assert messages[-1]["text"] == join_texts([p["text"] for p in partials], messages[-1]["language"]), messages
