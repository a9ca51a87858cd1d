"""The seed API on the real embedded Whisper base, with speech espeak-ng makes in the test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

from tests.asr.conftest import SENTENCES, SHORT
from tests.asr.speech import sox, speak, word_error_rate, words


def post_asr(client: TestClient, path: Path, **form: str) -> dict:
    with open(path, "rb") as audio:
        response = client.post("/asr", files={"file": (path.name, audio)}, data=form)
    assert response.status_code == 200, response.text
    return response.json()


def test_asr_transcribes_english_sentences_with_low_word_error_rate(client, sentences_wav):
    body = post_asr(client, sentences_wav)
    assert word_error_rate(SENTENCES, body["text"]) <= 0.35, body["text"]
    assert body["language"] == "en"
    assert 5 < body["duration"] < 15
    assert len(body["segments"]) >= 2 and body["segments"][0]["start"] < body["segments"][-1]["end"]


def test_asr_gives_the_same_text_for_8khz_stereo_wav_flac_and_ogg(client, short_wav, audio_dir):
    reference = post_asr(client, short_wav)["text"]
    assert word_error_rate(SHORT, reference) <= 0.35, reference
    variants = [
        sox(short_wav, audio_dir / "short-8k-stereo.wav", rate=8000, channels=2),
        sox(short_wav, audio_dir / "short.flac"),
        sox(short_wav, audio_dir / "short-48k-stereo.ogg", rate=48000, channels=2),
    ]
    for variant in variants:
        text = post_asr(client, variant)["text"]
        assert words(text) == words(reference), (variant.name, text, reference)


def test_asr_handles_a_three_minute_file_in_pieces(client, audio_dir):
    first = speak("Good morning everyone.", audio_dir / "first.wav")
    last = speak("Thank you and goodbye.", audio_dir / "last.wav")
    gap = sox(Path("-n"), audio_dir / "gap.wav", "trim", "0", "176", rate=22050, channels=1)
    long_wav = audio_dir / "three-minutes.wav"
    subprocess.run(["sox", str(first), str(gap), str(last), str(long_wav)], check=True)
    body = post_asr(client, long_wav)
    assert 175 < body["duration"] < 185
    assert word_error_rate("Good morning everyone. Thank you and goodbye.", body["text"]) <= 0.35, body["text"]
    assert body["segments"][-1]["start"] > 170  # the last sentence keeps its place in the file


def test_asr_answers_silence_with_empty_text(client, silence_wav):
    body = post_asr(client, silence_wav)
    assert body["text"] == "" and body["segments"] == []
    assert abs(body["duration"] - 3.0) < 0.05


def test_asr_stream_sends_a_partial_line_per_sentence_then_a_final_line(client, sentences_wav):
    with open(sentences_wav, "rb") as audio:
        response = client.post("/asr/stream", files={"file": ("s.wav", audio)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    partials, final = lines[:-1], lines[-1]
    assert len(partials) >= 2, lines
    assert all("partial_text" in line and not line.get("final") for line in partials)
    assert [len(p["partial_text"]) for p in partials] == sorted(len(p["partial_text"]) for p in partials)
    assert final["final"] is True and final["partial_text"] == partials[-1]["partial_text"]
    assert word_error_rate(SENTENCES, final["partial_text"]) <= 0.35, final


def test_asr_stream_of_silence_sends_one_empty_final_line(client, silence_wav):
    with open(silence_wav, "rb") as audio:
        response = client.post("/asr/stream", files={"file": ("s.wav", audio)})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == [{"partial_text": "", "final": True, "language": None, "duration": 3.0, "segments": []}]
