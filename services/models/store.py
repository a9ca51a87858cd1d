"""The models directory: finished files under ``{root}/{owner}/{repo}/``, downloads under ``{root}/.staging``.

A file reaches its final path only by an atomic rename from the staging area on the same file system,
after its size and hash were checked, so a service never loads a partial file. A download that was
cut off stays in staging and is resumed by the next pull of the same repo.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from services.models.names import local_name, repo_id
from services.settings import data_path

STAGING = ".staging"
COMPLETE = ".complete"  # {root}/.complete/{name}: the pull of that whole directory finished
HEADROOM = 64 * 1024 * 1024  # free space kept beyond what a pull writes


def models_dir() -> Path:
    """``LINGXI_MODELS_DIR``, else ``$LINGXI_DATA_DIR/models`` (``.data/models`` on a laptop)."""
    return Path(os.environ.get("LINGXI_MODELS_DIR") or data_path("models"))


class NoSpace(OSError):
    """The disk cannot hold what a pull would write."""


@dataclass(frozen=True)
class Stored:
    name: str  # owner/repo
    files: int
    size: int


def sha256_of(path: Path, upto: int | None = None) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        left = upto if upto is not None else -1
        while left != 0:
            chunk = f.read(8 * 1024 * 1024 if left < 0 else min(left, 8 * 1024 * 1024))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk) if left > 0 else 0
    return digest


class HashingWriter:
    """A file opened for appending that hashes what is written (and what was there), for one-pass checks.

    The hash runs in a thread of its own (hashlib lets go of the GIL), beside the receiving and writing;
    at most ``QUEUED`` chunks wait for it, so memory stays flat whatever the file size.
    """

    QUEUED = 8

    def __init__(self, path: Path, on_bytes: object = None) -> None:
        self.path = path
        self.resumed = path.stat().st_size if path.exists() else 0
        self.file: BinaryIO = path.open("ab")
        self.on_bytes = on_bytes
        self.start(sha256_of(path) if self.resumed else hashlib.sha256())

    def start(self, digest: hashlib._Hash) -> None:
        self.digest = digest
        self.chunks: queue.Queue[bytes | None] = queue.Queue(self.QUEUED)
        self.hasher = threading.Thread(target=self.hash_chunks, name="sha256", daemon=True)
        self.hasher.start()

    def hash_chunks(self) -> None:
        while (chunk := self.chunks.get()) is not None:
            self.digest.update(chunk)

    def finish_hashing(self) -> None:
        if self.hasher.is_alive():
            self.chunks.put(None)
            self.hasher.join()

    def hexdigest(self) -> str:
        """The sha256 of the whole file as written."""
        self.finish_hashing()
        return self.digest.hexdigest()

    def write(self, data: bytes) -> int:
        self.chunks.put(bytes(data))
        written = self.file.write(data)
        if callable(self.on_bytes):
            self.on_bytes(len(data))
        return written

    def tell(self) -> int:
        return self.file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        """A server that ignored the Range header: start over from ``size`` bytes (0 in practice)."""
        size = self.file.tell() if size is None else size
        self.file.flush()
        result = self.file.truncate(size)
        self.finish_hashing()
        self.start(sha256_of(self.path, size) if size else hashlib.sha256())
        return result

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.finish_hashing()
        self.file.close()


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or models_dir())

    def repo_dir(self, name: str) -> Path:
        return self.root / local_name(name)

    def staging_dir(self, source: str, hub_repo: str, name: str) -> Path:
        return self.root / STAGING / source / repo_id(hub_repo).replace("/", "--") / local_name(name)

    def final_path(self, name: str, file: PurePosixPath) -> Path:
        path = self.repo_dir(name).joinpath(*file.parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"{file} would land outside the models directory")
        return path

    def ensure_space(self, needed: int) -> None:
        """Refuse before downloading when the staging area's disk cannot hold ``needed`` more bytes."""
        probe = self.root / STAGING
        probe.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(probe).free
        if needed + HEADROOM > free:
            raise NoSpace(
                f"not enough disk space in {self.root}: the pull needs {needed / 1e9:.2f} GB "
                f"(+{HEADROOM // 2**20} MiB headroom), {free / 1e9:.2f} GB are free"
            )

    def publish(self, part: Path, final: Path) -> None:
        """Move a checked download into place (same file system: an atomic rename)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)

    def mark_complete(self, name: str, what: str) -> None:
        marker = self.root / COMPLETE / local_name(name)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(what)

    def is_complete(self, name: str) -> bool:
        return (self.root / COMPLETE / local_name(name)).is_file() and self.repo_dir(name).is_dir()

    def listing(self) -> list[Stored]:
        if not self.root.is_dir():
            return []
        rows = []
        for top in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            has_files = any(f.is_file() for f in top.iterdir())  # a model dir itself, else owner/repo dirs
            for model in [top] if has_files else sorted(p for p in top.iterdir() if p.is_dir()):
                files = [f for f in model.rglob("*") if f.is_file()]
                name = str(model.relative_to(self.root))
                rows.append(Stored(name, len(files), sum(f.stat().st_size for f in files)))
        return rows

    def remove(self, name: str) -> bool:
        """Delete a pulled repo and its unfinished downloads; False when there was none."""
        target = self.repo_dir(name)
        found = target.is_dir()
        if found:
            shutil.rmtree(target)
            if target.parent.is_dir() and not any(target.parent.iterdir()):
                target.parent.rmdir()
        (self.root / COMPLETE / name).unlink(missing_ok=True)
        for staged in (self.root / STAGING).glob(f"*/*/{local_name(name)}"):
            shutil.rmtree(staged, ignore_errors=True)
            found = True
        return found
