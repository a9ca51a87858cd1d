"""Who spoke when, on conversations of espeak-ng voices built here, with the real speaker encoder."""

from __future__ import annotations

import base64
import json
from collections import Counter

import numpy as np
import openai
import pytest

from asr import speaker_clusters
from asr.diarize import Diarizer, SpeakerOptions
from asr.engines.base import Span
from asr.engines.silero_vad import SileroVad
from asr.engines.upstream import to_wav
from tests.asr.conversations import load_set, render, score
from tests.asr.speech import VOICES, Turn, conversation, say


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


@pytest.fixture(scope="module")
def evaluation_set() -> list[tuple[np.ndarray, list[Turn], list[Span]]]:
    """The held-out evaluation conversations (thresholds are tuned on the development set only)."""
    vad = SileroVad()
    return [(audio, truth, vad(audio)) for audio, truth in map(render, load_set("eval"))]


def test_held_out_conversations_keep_their_measured_quality(speaker_encoder, evaluation_set):
    """Measured once on the evaluation set (docs/benchmarks.md, third round: the pitch cue): speaker count
    right in 7 of 12 conversations, 88.2 % of speech attributed right, 96.7 % and exactly the speakers
    asked for with ``num_speakers``, 88 % of turns with one label inside. The guards sit a margin below;
    the issue's targets (90 % of counts, 90 % of speech) are not met, see docs/benchmarks.md."""
    counted, right, right_fixed, steady = 0, [], [], []
    for audio, truth, spans in evaluation_set:
        speakers = len({t.speaker for t in truth})
        free = Diarizer.turns_blocking(speaker_encoder, audio, spans, SpeakerOptions())
        fixed = Diarizer.turns_blocking(speaker_encoder, audio, spans, SpeakerOptions(num_speakers=speakers))
        assert len({t.speaker for t in fixed}) == speakers, fixed
        counted += len({t.speaker for t in free}) == speakers
        right.append(score(truth, [(t.speaker, t.start, t.end) for t in free])["right"])
        scored = score(truth, [(t.speaker, t.start, t.end) for t in fixed])
        right_fixed.append(scored["right"])
        steady.append(scored["steady"])
    assert counted >= 6, counted
    assert np.mean(right) >= 0.87, right
    assert np.mean(right_fixed) >= 0.94, right_fixed
    assert np.mean(steady) >= 0.82, steady


def test_min_and_max_speakers_bound_the_count(speaker_encoder, evaluation_set):
    for audio, truth, spans in evaluation_set[:3]:  # 2, 3 and 4 speakers
        speakers = len({t.speaker for t in truth})
        for low, high in ((speakers + 1, 8), (1, speakers - 1), (2, 2)):
            turns = Diarizer.turns_blocking(
                speaker_encoder, audio, spans, SpeakerOptions(min_speakers=low, max_speakers=high)
            )
            assert low <= len({t.speaker for t in turns}) <= high, (speakers, low, high, turns)


def test_speakers_heard_twice_or_barely_are_folded_but_never_below_min_speakers():
    """Four clusters of 1.6 s windows: a voice split in two (centres 0.95 alike, 6.4 s each), another
    voice (6.4 s), and a stray cluster of one window."""
    rng = np.random.default_rng(0)
    voice_a, voice_b, stray = np.eye(8)[:3]
    voice_a2 = speaker_clusters.unit(voice_a + 0.33 * np.eye(8)[3])
    plan = [(voice_a, 0)] * 4 + [(voice_b, 2)] * 4 + [(voice_a2, 1)] * 4 + [(stray, 3)]
    size = int(speaker_clusters.WINDOW_SECONDS * 16000)
    pieces = [[Span(i * size, (i + 1) * size)] for i in range(len(plan))]
    embeddings = np.stack([speaker_clusters.unit(v + 0.02 * rng.standard_normal(8)) for v, _ in plan])
    labels = [label for _, label in plan]

    folded = speaker_clusters.prune(pieces, embeddings, labels, low=1)
    assert len(set(folded)) == 2, folded
    assert len({folded[i] for i, (v, _) in enumerate(plan) if v is voice_a or v is voice_a2}) == 1, folded
    assert len(set(speaker_clusters.prune(pieces, embeddings, labels, low=3))) == 3


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


def test_num_speakers_holds_through_both_routes(client, evaluation_set):
    audio, _, _ = evaluation_set[10]  # three voices, one of them Mandarin, with turns that overlap
    wav = to_wav(audio)
    data = {"response_format": "diarized_json", "num_speakers": "3"}
    body = client.post("/v1/audio/transcriptions", files={"file": ("talk.wav", wav)}, data=data).json()
    assert {s["speaker"] for s in body["segments"]} == {"A", "B", "C"}, body
    seed = client.post("/asr", files={"file": ("talk.wav", wav)}, data={"diarize": "true", "num_speakers": "3"}).json()
    assert seed["speakers"] == ["A", "B", "C"], seed
