"""Voice pitch as a second speaker cue: tracked right, and it keeps apart two voices the encoder takes for one."""

from __future__ import annotations

import numpy as np
import pytest

from asr import speaker_pitch
from asr.diarize import Diarizer, SpeakerOptions
from asr.engines.silero_vad import SileroVad
from tests.asr.conversations import ENGLISH_DEV, Turn, Voice, say, score

SAMPLE_RATE = 16000


def tone(hertz: float, seconds: float = 1.0) -> np.ndarray:
    """A voiced-like sound: a fundamental and four harmonics."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.1 * sum(np.sin(2 * np.pi * hertz * k * t) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize("hertz", [50, 98, 185, 370])
def test_the_pitch_of_a_periodic_sound_is_its_fundamental(hertz):
    frames = speaker_pitch.track(tone(hertz))
    assert frames.size >= 80
    assert abs(speaker_pitch.median_pitch([frames]) - 12 * np.log2(hertz / 55)) < 0.1


def test_noise_and_silence_are_not_voiced():
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    assert speaker_pitch.track(noise).size < speaker_pitch.MIN_VOICED
    assert speaker_pitch.median_pitch([speaker_pitch.track(np.zeros(SAMPLE_RATE, dtype=np.float32))]) is None
    assert speaker_pitch.track(tone(120, 0.05)).size == 0  # shorter than one frame


# One espeak-ng voice at two pitches: the GE2E encoder hears one speaker (centres about 0.9 alike).
LOW, HIGH = Voice("espeak", "en-gb+Hugo", 20, 160, "en"), Voice("espeak", "en-gb+Hugo", 75, 160, "en")


def two_pitches() -> tuple[np.ndarray, list[Turn]]:
    """Six turns, LOW and HIGH in turn, 0.6 s apart."""
    clips, truth, at = [], [], 0.5
    for i, text in enumerate(ENGLISH_DEV[2:8]):
        audio = say(text, (LOW, HIGH)[i % 2])
        truth.append(Turn(i % 2, at, at + audio.size / SAMPLE_RATE, text))
        clips.append((int(at * SAMPLE_RATE), audio))
        at += audio.size / SAMPLE_RATE + 0.6
    mix = np.zeros(int((at + 0.5) * SAMPLE_RATE), dtype=np.float32)
    for offset, audio in clips:
        mix[offset : offset + audio.size] += audio
    return mix, truth


def test_two_voices_the_encoder_folds_are_kept_apart_by_their_pitch(speaker_encoder, monkeypatch):
    audio, truth = two_pitches()
    spans = SileroVad()(audio)
    turns = Diarizer.turns_blocking(speaker_encoder, audio, spans, SpeakerOptions())
    assert len({t.speaker for t in turns}) == 2, turns
    assert score(truth, [(t.speaker, t.start, t.end) for t in turns])["right"] >= 0.9

    monkeypatch.setattr(speaker_pitch, "APART", float("inf"))  # the encoder alone
    alone = Diarizer.turns_blocking(speaker_encoder, audio, spans, SpeakerOptions())
    assert len({t.speaker for t in alone}) == 1, alone
    fixed = Diarizer.turns_blocking(speaker_encoder, audio, spans, SpeakerOptions(num_speakers=2))
    assert score(truth, [(t.speaker, t.start, t.end) for t in fixed])["right"] >= 0.9


def test_pitch_never_crosses_max_speakers(speaker_encoder):
    audio, _ = two_pitches()
    turns = Diarizer.turns_blocking(speaker_encoder, audio, SileroVad()(audio), SpeakerOptions(max_speakers=1))
    assert len({t.speaker for t in turns}) == 1
