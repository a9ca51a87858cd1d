"""Every bad input gets a 4xx whose message names the problem; nothing is a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from asr.app import create_app
from asr.config import Settings
from asr.engines.whisper import WhisperEngine
from services.errors import CODES
from tests.asr.speech import sox
from tests.conftest import wait_for_health


def post(client: TestClient, data: bytes, path: str = "/asr", **form: str):
    return client.post(path, files={"file": ("upload.bin", data)}, data=form)


def assert_error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == CODES.get(status) and words in error["message"], error


@pytest.mark.parametrize("path", ["/asr", "/asr/stream", "/v1/audio/transcriptions"])
def test_asr_rejects_non_audio_upload(client, path):
    assert_error(post(client, b"this is a text file, not audio\n" * 20, path), 415, "not a recognised audio")


@pytest.mark.parametrize("path", ["/asr", "/asr/stream", "/v1/audio/transcriptions"])
def test_asr_rejects_an_empty_upload(client, path):
    assert_error(post(client, b"", path), 400, "empty")


def test_asr_rejects_a_corrupt_flac(client, short_wav, audio_dir):
    flac = sox(short_wav, audio_dir / "corrupt-source.flac").read_bytes()
    assert_error(post(client, flac[:200]), 400, "corrupt or truncated")


def test_asr_rejects_a_missing_file_field(client):
    response = client.post("/asr", data={"language": "en"})
    assert_error(response, 422, "file")


def test_asr_rejects_an_unknown_language(client, short_wav):
    assert_error(post(client, short_wav.read_bytes(), language="xx"), 400, "language 'xx'")


def test_openai_route_rejects_an_unknown_response_format(client, short_wav):
    response = post(client, short_wav.read_bytes(), "/v1/audio/transcriptions", response_format="docx")
    assert_error(response, 422, "response_format")


def test_asr_rejects_an_upload_over_the_byte_limit(make_client, sentences_wav):
    small = make_client(max_audio_bytes=10_000)
    for path in ("/asr", "/asr/stream"):
        assert_error(post(small, sentences_wav.read_bytes(), path), 413, "the limit is 10000")


def test_asr_rejects_a_request_over_the_request_size_cap(make_client, sentences_wav):
    capped = make_client(max_request_bytes=20_000)
    assert_error(post(capped, sentences_wav.read_bytes()), 413, "larger than 20000 bytes")


def test_asr_rejects_audio_longer_than_the_duration_limit(make_client, sentences_wav):
    short_only = make_client(max_audio_seconds=2)
    for path in ("/asr", "/asr/stream", "/v1/audio/transcriptions"):
        assert_error(post(short_only, sentences_wav.read_bytes(), path), 413, "longer than 2 seconds")


def test_asr_answers_429_when_its_queue_is_full(make_client, short_wav):
    one_at_a_time = make_client(max_pending=1)
    with one_at_a_time.websocket_connect("/asr/ws") as live:  # a live session holds the only slot
        live.send_bytes(b"\0\0" * 1600)
        response = post(one_at_a_time, short_wav.read_bytes())
        assert_error(response, 429, "retry")
        assert response.headers["retry-after"] == "1"
        live.send_json({"event": "end"})
        assert live.receive_json()["type"] == "final"
    assert post(one_at_a_time, short_wav.read_bytes()).status_code == 200  # the slot is free again


def test_asr_reports_a_missing_model_dir_in_health_and_answers_503(tmp_path: Path, short_wav):
    settings = Settings(model_dir=tmp_path / "no-such-model", model_cache_dir=tmp_path)
    with TestClient(create_app(settings, engine=WhisperEngine(settings))) as broken:
        health = wait_for_health(broken, settled=True)
        assert health.status_code == 503 and health.json()["status"] == "error"
        assert "failed to load" in health.json()["detail"]
        assert_error(post(broken, short_wav.read_bytes()), 503, "not ready")


def test_finished_streams_give_their_slot_back(make_client, silence_wav):
    one_at_a_time = make_client(max_pending=1)
    for path in ("/asr/stream", "/v1/audio/transcriptions", "/asr/stream"):
        form = {"stream": "true"} if path.startswith("/v1") else {}
        response = post(one_at_a_time, silence_wav.read_bytes(), path, **form)
        assert response.status_code == 200, response.text
    assert one_at_a_time.app.state.transcriber.admitted == 0
