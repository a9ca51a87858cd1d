"""Speech made in the test: espeak-ng speaks English (and Mandarin), sox converts it; plus a word error rate."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


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
