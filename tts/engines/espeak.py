"""espeak-ng: the embedded default. Formant synthesis, tiny and fast, robotic but intelligible.

Voice by script: ``cmn-latn-pinyin`` for runs of Chinese characters (espeak-ng 1.51's plain ``cmn``
reads them as pinyin spelled out in English, tone digits and all), ``en-us`` otherwise, switching within
a sentence. Styles are presets of voice variant, pitch and rate. With ``prompt_audio`` the engine
measures the reference's median F0 and syllable rate and picks the espeak pitch and rate that come
closest (calibrated once per variant against espeak's own output): an approximation of the
speaker's register and tempo, not voice cloning.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

from services.engine import Engine
from services.errors import BadRequest, LingxiError, NotConfigured
from tts.audio import median_f0, read_wav, resample, syllable_rate
from tts.config import Settings
from tts.engines.base import Audio, SynthesisRequest
from tts.text import script_runs

SAMPLE_RATE = 22_050
CHINESE_VOICE, OTHER_VOICE = "cmn-latn-pinyin", "en-us"
MIN_RATE, MAX_RATE = 80, 450
HIGH_VOICE_HZ = 165.0  # references above this get a female variant (unless a style was named)
CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."
CALIBRATION_PITCHES = (0, 20, 40, 60, 80, 99)
CALIBRATION_RATES = (80, 130, 175, 250, 350, 450)


@dataclass(frozen=True)
class Preset:
    variant: str | None  # espeak-ng voice variant (m1..m7, f1..f5, ...); None = the voice's own
    pitch: int  # 0-99
    rate: int  # words per minute
    description: str


PRESETS = {
    "style1": Preset(None, 50, 175, "neutral male voice, moderate pace"),
    "style2": Preset("f2", 65, 160, "brighter female voice, a little slower"),
    "male": Preset("m3", 40, 170, "lower male voice"),
    "female": Preset("f4", 60, 170, "female voice"),
    "narrator": Preset("m7", 35, 150, "deep, slow narrator"),
    "fast": Preset(None, 50, 260, "neutral voice, fast"),
}
MALE_VARIANT, FEMALE_VARIANT = "m3", "f4"


@dataclass(frozen=True)
class Calibration:
    """espeak's measured median F0 per pitch setting and syllable rate per rate setting."""

    pitch_f0: list[float]
    rate_syllables: list[float]

    def pitch_for(self, f0: float) -> int:
        return int(round(np.interp(f0, self.pitch_f0, CALIBRATION_PITCHES)))

    def rate_for(self, syllables_per_s: float) -> int:
        return int(round(np.interp(syllables_per_s, self.rate_syllables, CALIBRATION_RATES)))


class EspeakEngine(Engine):
    name = "espeak"
    max_parallel = 4
    handles_speed = True

    def __init__(self, settings: Settings) -> None:
        self.binary = settings.espeak_binary
        self.calibrations: dict[str | None, Calibration] = {}
        self.lock = threading.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        path = shutil.which(self.binary)
        if path is None:
            raise NotConfigured(f"{self.binary} is not installed (apt-get install espeak-ng)")
        self.binary = path
        listing = subprocess.run([path, "--voices"], capture_output=True, text=True, timeout=30, check=False).stdout
        names = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
        missing = {CHINESE_VOICE, OTHER_VOICE} - names
        if missing:
            raise NotConfigured(f"espeak-ng lacks the voices {sorted(missing)} (install the full espeak-ng-data)")
        self.calibration(None)

    def styles(self) -> list[str]:
        return list(PRESETS)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        preset = PRESETS.get(request.style)
        if preset is None:
            raise BadRequest(f"unknown style {request.style!r}; valid styles: {', '.join(PRESETS)}")
        variant, pitch, rate = preset.variant, preset.pitch, preset.rate
        if request.prompt_audio is not None:
            variant, pitch, rate = self.adapt(request, variant)
        rate = int(min(MAX_RATE, max(MIN_RATE, rate * request.speed)))
        pieces = [
            self.run(run, CHINESE_VOICE if is_han else OTHER_VOICE, variant, pitch, rate)
            for is_han, run in script_runs(request.text)
        ]
        if not pieces:
            return Audio(np.zeros(0, dtype=np.int16), SAMPLE_RATE)
        return Audio(np.concatenate(pieces), SAMPLE_RATE)

    def adapt(self, request: SynthesisRequest, variant: str | None) -> tuple[str | None, int, int]:
        """Variant, pitch and rate that bring espeak closest to the reference recording."""
        assert request.prompt_audio is not None
        samples, sample_rate = request.prompt_audio.samples, request.prompt_audio.sample_rate
        f0 = median_f0(samples, sample_rate)
        if f0 is None:
            raise BadRequest("prompt_audio contains no voiced speech to take a pitch from")
        if not request.style_explicit:
            variant = FEMALE_VARIANT if f0 > HIGH_VOICE_HZ else MALE_VARIANT
        calibration = self.calibration(variant)
        syllables = syllable_rate(samples, sample_rate)
        rate = calibration.rate_for(syllables) if syllables else PRESETS["style1"].rate
        return variant, calibration.pitch_for(f0), rate

    def calibration(self, variant: str | None) -> Calibration:
        with self.lock:
            if variant not in self.calibrations:
                pitch_f0 = []
                for pitch in CALIBRATION_PITCHES:
                    samples = self.run(CALIBRATION_TEXT, OTHER_VOICE, variant, pitch, 175)
                    pitch_f0.append(median_f0(samples, SAMPLE_RATE) or 0.0)
                rates = []
                for rate in CALIBRATION_RATES:
                    samples = self.run(CALIBRATION_TEXT, OTHER_VOICE, variant, 50, rate)
                    rates.append(syllable_rate(samples, SAMPLE_RATE) or 0.0)
                # np.interp needs increasing x: keep the curves monotonic
                self.calibrations[variant] = Calibration(
                    list(np.maximum.accumulate(pitch_f0)), list(np.maximum.accumulate(rates))
                )
            return self.calibrations[variant]

    def run(self, text: str, voice: str, variant: str | None, pitch: int, rate: int) -> np.ndarray:
        voice_arg = f"{voice}+{variant}" if variant else voice
        command = [self.binary, "--stdout", "-b", "1", "-v", voice_arg, "-p", str(pitch), "-s", str(rate)]
        try:
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LingxiError(f"espeak-ng did not run: {exc}") from exc
        if done.returncode != 0:
            raise LingxiError(f"espeak-ng failed: {done.stderr.decode(errors='replace')[:200]}")
        try:
            audio = read_wav(done.stdout)
        except ValueError as exc:
            raise LingxiError("espeak-ng wrote no audio") from exc
        if audio.sample_rate != SAMPLE_RATE:
            audio = resample(audio, SAMPLE_RATE)
        return audio.samples
