"""Speech made in the test: espeak-ng speaks English (and Mandarin), sox converts it; plus a word error rate."""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def speak(text: str, path: Path, *, pause_ms: int = 900) -> Path:
    """English speech as 22.05 kHz mono wav; sentences separated by ``pause_ms`` of silence."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    pause = f'<break time="{pause_ms}ms"/>'
    ssml = f"<speak>{pause.join(sentences)}</speak>"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-m", "-w", str(path), ssml], check=True)
    return path


def speak_chinese(text: str, path: Path) -> Path:
    """Mandarin speech as espeak-ng speaks it (its pinyin voice: the plain ``cmn`` mangles the tones)."""
    subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "120", "-w", str(path), text], check=True)
    return path


def sox(source: Path, target: Path, *effects: str, rate: int | None = None, channels: int | None = None) -> Path:
    options = [*(["-r", str(rate)] if rate else []), *(["-c", str(channels)] if channels else [])]
    subprocess.run(["sox", str(source), *options, str(target), *effects], check=True)
    return target


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance over words."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / max(1, len(ref))


# Voices that differ in voice, pitch and rate, as a conversation's speakers (espeak-ng -v/-p/-s).
VOICES = (("en+Diogo", 40, 140), ("en+Alicia", 60, 160), ("en-gb-scotland+f5", 90, 195), ("en+Mario", 10, 125))
TURNS = (
    "Good morning, how are you today?",
    "I am fine, thank you. The weather is lovely.",
    "Shall we meet for lunch at noon?",
    "Yes, let us go to the small cafe near the station.",
    "I will bring the report we talked about yesterday.",
    "Great. Please send me the numbers before the meeting starts.",
    "The train was late again this morning.",
    "Do you want tea or coffee?",
    "Coffee please, with a little milk.",
    "We should finish the project by Friday.",
    "That sounds like a good plan to me.",
    "See you later then.",
)


@dataclass
class Turn:
    """One speaker's turn in a rendered conversation: who, when (seconds), what; a back-channel ("yes", "对")
    is said inside another speaker's turn."""

    speaker: int
    start: float
    end: float
    text: str
    back_channel: bool = False


def say(text: str, voice: tuple[str, int, int]) -> np.ndarray:
    """One utterance by ``voice`` as mono 16 kHz float32, trimmed of espeak-ng's leading/trailing silence."""
    name, pitch, rate = voice
    wav = subprocess.run(
        ["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(rate), "--stdout", text], check=True, capture_output=True
    ).stdout
    raw = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", "16000", "-c", "1", "-e", "signed", "-b", "16", "-"],
        input=wav, check=True, capture_output=True,
    ).stdout  # fmt: skip
    audio = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def conversation(
    speakers: int, turns: int, seed: int, *, gap_s: tuple[float, float] = (0.6, 1.0)
) -> tuple[np.ndarray, list[Turn]]:
    """``turns`` non-overlapping turns of 1–6 s by ``speakers`` voices, each speaker at least once."""
    rng = random.Random(seed)
    order = list(range(speakers)) + [rng.randrange(speakers) for _ in range(max(0, turns - speakers))]
    rng.shuffle(order)
    pieces, truth, at = [np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)], [], 0.5
    previous = -1
    for index, speaker in enumerate(order):
        if speaker == previous:
            speaker = (speaker + 1) % speakers
        previous = speaker
        text = TURNS[(seed + index) % len(TURNS)]
        audio = say(text, VOICES[speaker])[: 6 * SAMPLE_RATE]
        truth.append(Turn(speaker, at, at + audio.size / SAMPLE_RATE, text))
        gap = np.zeros(int(rng.uniform(*gap_s) * SAMPLE_RATE), dtype=np.float32)
        pieces += [audio, gap]
        at += (audio.size + gap.size) / SAMPLE_RATE
    return np.concatenate(pieces), truth


@dataclass
class DiarizationError:
    missed: float  # shares of the reference speech
    false_alarm: float
    confusion: float

    @property
    def total(self) -> float:
        return self.missed + self.false_alarm + self.confusion


def diarization_error(
    truth: list[Turn], found: list[tuple[str, float, float]], *, collar_s: float = 0.25
) -> DiarizationError:
    """DER on 10 ms frames under the best one-to-one speaker mapping; ``collar_s`` around each reference
    boundary is not scored (the usual NIST collar)."""
    step = 0.01
    end = max([t.end for t in truth] + [e for _, _, e in found]) + 1
    frames = int(end / step)
    ref = np.full(frames, -1)
    scored = np.ones(frames, dtype=bool)
    for turn in truth:
        ref[int(turn.start / step) : int(turn.end / step)] = turn.speaker
        for edge in (turn.start, turn.end):
            scored[max(0, int((edge - collar_s) / step)) : int((edge + collar_s) / step)] = False
    names = sorted({name for name, _, _ in found})
    hyp = np.full(frames, -1)
    for name, start, stop in found:
        hyp[int(start / step) : int(stop / step)] = names.index(name)
    ref, hyp = ref[scored], hyp[scored]
    speech = max(1, int((ref >= 0).sum()))
    missed = int(((ref >= 0) & (hyp < 0)).sum())
    false_alarm = int(((ref < 0) & (hyp >= 0)).sum())
    both = (ref >= 0) & (hyp >= 0)
    speakers = int(ref.max()) + 1 if (ref >= 0).any() else 0
    overlap = np.zeros((speakers, max(1, len(names))))
    for r, h in zip(ref[both], hyp[both], strict=True):
        overlap[r, h] += 1
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-overlap)
    confusion = int(both.sum() - overlap[rows, cols].sum())
    return DiarizationError(missed / speech, false_alarm / speech, confusion / speech)
