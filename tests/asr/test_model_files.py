"""The embedded Whisper base is joined from two PyPI packages once, sha256 checked."""

from __future__ import annotations

import hashlib

from asr.engines.whisper_model import SHA256, embedded_whisper_dir


def test_embedded_model_is_assembled_once_and_verified(tmp_path):
    directory = embedded_whisper_dir(tmp_path)
    model = directory / "model.bin"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest == SHA256
    assert {p.name for p in directory.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    written = model.stat().st_mtime_ns
    assert embedded_whisper_dir(tmp_path) == directory and model.stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".partial")]  # no partial files left behind


def test_an_unverified_copy_is_rebuilt(tmp_path):
    directory = embedded_whisper_dir(tmp_path)
    (directory / "model.bin").write_bytes(b"half a model")
    (directory / "model.bin.sha256").unlink()
    embedded_whisper_dir(tmp_path)
    assert hashlib.sha256((directory / "model.bin").read_bytes()).hexdigest() == SHA256
