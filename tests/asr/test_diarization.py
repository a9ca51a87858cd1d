"""Who spoke when, on conversations of espeak-ng voices built here, with the real speaker encoder."""

from __future__ import annotations

import base64
import json
from collections import Counter

import openai
import pytest

from asr.diarize import Diarizer, SpeakerOptions
from asr.engines.silero_vad import SileroVad
from asr.engines.upstream import to_wav
from tests.asr.speech import VOICES, Turn, conversation, diarization_error, say


@pytest.fixture(scope="module")
def openai_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def two_speakers():
    return conversation(2, 4, seed=1)


@pytest.fixture(scope="module")
def three_speakers():
    return conversation(3, 6, seed=0)


def truth_at(truth: list[Turn], start: float, end: float) -> int | None:
    """The true speaker who talks most between ``start`` and ``end``."""
    talk: Counter[int] = Counter()
    for turn in truth:
        talk[turn.speaker] += max(0.0, min(end, turn.end) - max(start, turn.start))
    speaker, overlap = talk.most_common(1)[0]
    return speaker if overlap > 0 else None


def agreement(truth: list[Turn], segments: list[tuple[str, float, float]]) -> float:
    """Share of segments whose label is the one their true speaker gets most often (a one-to-one map)."""
    pairs = [(truth_at(truth, start, end), label) for label, start, end in segments]
    mapping: dict[int | None, str] = {}
    for (speaker, label), _ in Counter(pairs).most_common():
        if speaker not in mapping and label not in mapping.values():
            mapping[speaker] = label
    return sum(mapping.get(speaker) == label for speaker, label in pairs) / max(1, len(pairs))


def test_speaker_count_and_turns_are_found_in_conversations_of_two_to_four_voices(speaker_encoder):
    vad = SileroVad()
    counted, errors = 0, []
    cases = [(speakers, seed) for speakers in (2, 3, 4) for seed in (0, 1)]
    for speakers, seed in cases:
        audio, truth = conversation(speakers, 6, seed)
        turns = Diarizer.turns_blocking(speaker_encoder, audio, vad(audio), SpeakerOptions())
        counted += len({t.speaker for t in turns}) == len({t.speaker for t in truth})
        errors.append(diarization_error(truth, [(t.speaker, t.start, t.end) for t in turns]).total)
    assert counted >= len(cases) - 1, errors
    assert sum(errors) / len(errors) <= 0.15, errors


def test_num_speakers_fixes_the_count(speaker_encoder):
    audio, _ = conversation(3, 6, seed=0)
    turns = Diarizer.turns_blocking(speaker_encoder, audio, SileroVad()(audio), SpeakerOptions(num_speakers=2))
    assert {t.speaker for t in turns} == {"A", "B"}


def test_openai_sdk_parses_diarized_json(openai_client, three_speakers):
    audio, truth = three_speakers
    result = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", to_wav(audio)),
        response_format="diarized_json",
        chunking_strategy="auto",
        language="en",
    )
    assert result.task == "transcribe" and result.text
    speakers = {segment.speaker for segment in result.segments}
    assert speakers == {"A", "B", "C"}, result.segments
    assert all(segment.text and segment.end > segment.start for segment in result.segments)
    assert agreement(truth, [(s.speaker, s.start, s.end) for s in result.segments]) >= 0.8, result.segments


def test_known_speaker_references_name_the_speakers(openai_client, two_speakers):
    audio, truth = two_speakers
    names = {0: "agent", 1: "customer"}
    samples = {s: say("This is a short sample of my voice for the reference.", VOICES[s]) for s in names}
    result = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", to_wav(audio)),
        response_format="diarized_json",
        language="en",
        known_speaker_names=[names[s] for s in names],
        known_speaker_references=[
            f"data:audio/wav;base64,{base64.b64encode(to_wav(samples[s])).decode()}" for s in names
        ],
    )
    right = [names[truth_at(truth, s.start, s.end)] == s.speaker for s in result.segments]
    assert right and sum(right) / len(right) >= 0.9, result.segments


def test_seed_asr_adds_speakers_and_stream_labels_each_line(client, two_speakers):
    audio, truth = two_speakers
    body = client.post("/asr", files={"file": ("talk.wav", to_wav(audio))}, data={"diarize": "true"}).json()
    assert body["speakers"] == ["A", "B"], body
    assert agreement(truth, [(s["speaker"], s["start"], s["end"]) for s in body["segments"]]) >= 0.8, body

    with client.stream(
        "POST", "/asr/stream", files={"file": ("talk.wav", to_wav(audio))}, data={"diarize": "true"}
    ) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    partials, final = lines[:-1], lines[-1]
    assert partials and all(line["speaker"] in ("A", "B") for line in partials), lines
    assert final["final"] and final["speakers"] == ["A", "B"] and all("speaker" in s for s in final["segments"])
    assert agreement(truth, [(line["speaker"], line["start"], line["end"]) for line in partials]) >= 0.8, lines


@pytest.mark.parametrize(
    "form",
    [
        {"response_format": "diarized_json", "known_speaker_names[]": "agent"},
        {"response_format": "diarized_json", "known_speaker_names[]": "a", "known_speaker_references[]": "nope"},
        {"response_format": "diarized_json", "chunking_strategy": "sometimes"},
        {"response_format": "diarized_json", "min_speakers": "3", "max_speakers": "2"},
        {"response_format": "diarized_json", "num_speakers": "0"},
    ],
)
def test_bad_diarization_options_are_400(client, short_wav, form):
    with open(short_wav, "rb") as audio:
        response = client.post("/v1/audio/transcriptions", files={"file": audio}, data=form)
    assert response.status_code == 400, response.text
