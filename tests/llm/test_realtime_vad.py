"""The realtime socket's server VAD (Silero) on PCM16 24 kHz as a client appends it: short noises (a
click, keyboard taps, knocks) start no turn, real speech does, from its first sound. Bursts are made
by sox, speech by espeak-ng; audio is fed in 20 ms appends (as browsers send it) and in 100 ms ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from llm.realtime.audio import ServerVad, Turn, load_vad_model
from llm.realtime.session import VAD_DEFAULTS
from tests.llm.realtime_client import RATE, silence, spoken_pcm

LEAD_MS = 300
OFFSETS_MS = range(0, 100, 12)  # the sound's start against the VAD's 32 ms windows and the appends


@pytest.fixture(scope="module")
def model() -> object:
    return load_vad_model()


def sox(path: Path, *effects: str) -> bytes:
    raw = path.with_suffix(".raw")
    pcm16 = ["-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed"]
    subprocess.run(["sox", "-V1", "-n", *pcm16, str(raw), *effects], check=True)
    return raw.read_bytes()


def turns(model: object, pcm: bytes, append_ms: int) -> list[Turn]:
    vad = ServerVad(model, dict(VAD_DEFAULTS))
    step = RATE * 2 * append_ms // 1000
    return [turn for start in range(0, len(pcm), step) for turn in vad.feed(pcm[start : start + step])]


def first_sound_ms(pcm: bytes) -> int:
    samples = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32))
    return int(np.nonzero(samples > 0.02 * 32768)[0][0]) * 1000 // RATE


@pytest.mark.parametrize("append_ms", [20, 100])
def test_clicks_taps_and_knocks_start_no_turn(model: object, tmp_path: Path, append_ms: int) -> None:
    click = sox(tmp_path / "click", "synth", "0.01", "whitenoise", "vol", "0.9")
    tap = sox(tmp_path / "tap", "synth", "0.015", "whitenoise", "highpass", "2000", "fade", "q", "0", "0.015", "0.012")
    # a knock: a plucked 220 Hz tone of 60 ms; one Silero window of it reaches 0.5 at most offsets
    knock = sox(tmp_path / "knock", "synth", "0.06", "pluck", "220", "vol", "0.9")
    noises = {
        "click": click,
        "keyboard taps": (tap + silence(105)) * 8,
        "three knocks": (knock + silence(140)) * 3,
    }
    for name, noise in noises.items():
        for offset in OFFSETS_MS:
            heard = turns(model, silence(LEAD_MS + offset) + noise + silence(800), append_ms)
            assert heard == [], f"{name} at +{offset} ms started a turn: {heard}"


@pytest.mark.parametrize("append_ms", [20, 100])
@pytest.mark.parametrize(
    ("text", "chinese"),
    [("Uh.", False), ("What is the capital of France?", False), ("北京是哪个国家的首都？", True)],
)
def test_speech_starts_a_turn_at_its_first_sound(
    model: object, tmp_path: Path, text: str, chinese: bool, append_ms: int
) -> None:
    speech = spoken_pcm(text, tmp_path / "speech", chinese=chinese)
    sound_ms = first_sound_ms(speech)
    for offset in OFFSETS_MS:
        heard = turns(model, silence(LEAD_MS + offset) + speech + silence(800), append_ms)
        assert [turn.kind for turn in heard] == ["started", "stopped"], (text, offset, heard)
        # the turn starts where the speech does, not after the windows it takes to be sure of it
        assert abs(heard[0].at_ms - (LEAD_MS + offset + sound_ms)) <= 60, (text, offset, heard)
