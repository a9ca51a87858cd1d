"""/v1/audio/transcriptions through the official openai client, against the served app."""

from __future__ import annotations

import openai
import pytest

from tests.asr.conftest import SHORT
from tests.asr.speech import word_error_rate


@pytest.fixture(scope="module")
def openai_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def transcribe(openai_client: openai.OpenAI, path, **options):
    with open(path, "rb") as audio:
        return openai_client.audio.transcriptions.create(model="whisper-1", file=audio, **options)


def test_openai_client_gets_json_text(openai_client, short_wav):
    result = transcribe(openai_client, short_wav)
    assert word_error_rate(SHORT, result.text) <= 0.35, result.text


def test_openai_client_gets_plain_text(openai_client, short_wav):
    result = transcribe(openai_client, short_wav, response_format="text", language="en")
    assert isinstance(result, str)
    assert word_error_rate(SHORT, result) <= 0.35, result


def test_openai_client_gets_srt_with_numbered_timed_cues(openai_client, sentences_wav):
    result = transcribe(openai_client, sentences_wav, response_format="srt", language="en")
    blocks = result.strip().split("\n\n")
    assert len(blocks) >= 2, result
    number, timing, text = blocks[0].split("\n", 2)
    assert number == "1" and " --> " in timing and timing.count(",") == 2 and text.strip()


def test_openai_client_gets_verbose_json_with_segments_and_words(openai_client, sentences_wav):
    result = transcribe(
        openai_client,
        sentences_wav,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english" and result.duration > 5
    assert len(result.segments) >= 2
    assert all(s.start < s.end for s in result.segments)
    assert result.segments[-1].end > result.segments[0].end
    assert result.words and result.words[0].word and result.words[-1].end > result.words[0].start


def test_openai_client_streams_text_deltas_then_done(openai_client, sentences_wav):
    with open(sentences_wav, "rb") as audio:
        events = list(openai_client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    kinds = [event.type for event in events]
    assert kinds.count("transcript.text.delta") >= 2 and kinds[-1] == "transcript.text.done", kinds
    joined = "".join(event.delta for event in events if event.type == "transcript.text.delta")
    assert joined == events[-1].text


def test_openai_client_sees_a_bad_request_for_an_unknown_language(openai_client, short_wav):
    with pytest.raises(openai.BadRequestError, match="language 'klingon'"):
        transcribe(openai_client, short_wav, language="klingon")


def test_vtt_starts_with_the_webvtt_header(client, short_wav):
    with open(short_wav, "rb") as audio:
        response = client.post(
            "/v1/audio/transcriptions", files={"file": ("a.wav", audio)}, data={"response_format": "vtt"}
        )
    assert response.status_code == 200
    assert response.text.startswith("WEBVTT\n\n00:00:0") and " --> " in response.text
