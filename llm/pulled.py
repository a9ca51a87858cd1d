"""GGUF models pulled through Ollama's ``/api/pull``: the record of what is served, and the pull jobs.

The record, ``ollama-pulled.json`` in the models directory, maps each pulled name to its GGUF file, so
the llm serves them again after a restart. A pull runs ``services.models.pull`` in a thread; its
progress becomes Ollama's status lines, which every client pulling the same name follows.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm.config import Engine, ModelRoute
from services.models.hubs import configured_sources
from services.models.names import GgufName
from services.models.pull import Event, PullError, gguf_candidates, one_gguf, pull
from services.models.store import ModelStore, sha256_of

RECORD = "ollama-pulled.json"
PROGRESS_EVERY_S = 0.2  # progress lines per file at most this often (and at its end)


@dataclass(frozen=True)
class Pulled:
    repo: str  # owner/repo under the models directory
    file: str
    sha256: str
    size: int
    modified_at: str


class PulledIndex:
    def __init__(self, root: Path) -> None:
        self.store = ModelStore(root)
        self.path = Path(root) / RECORD

    def load(self) -> dict[str, Pulled]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {name: Pulled(**row) for name, row in raw.items() if self.gguf(Pulled(**row)).is_file()}

    def save(self, entries: dict[str, Pulled]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{RECORD}.{os.getpid()}")
        partial.write_text(json.dumps({name: asdict(row) for name, row in entries.items()}, indent=1))
        os.replace(partial, self.path)

    def gguf(self, entry: Pulled) -> Path:
        return self.store.repo_dir(entry.repo) / entry.file

    def route(self, name: str, entry: Pulled) -> ModelRoute:
        return ModelRoute(name=name, engine=Engine.llamacpp, upstream_model=str(self.gguf(entry)))

    def forget(self, name: str) -> Pulled | None:
        entries = self.load()
        entry = entries.pop(name, None)
        self.save(entries)
        shared = entry is not None and any((e.repo, e.file) == (entry.repo, entry.file) for e in entries.values())
        if entry is not None and not shared:  # another name served from the same file keeps it
            self.gguf(entry).unlink(missing_ok=True)
            repo = self.store.repo_dir(entry.repo)
            if repo.is_dir() and not any(repo.iterdir()):
                repo.rmdir()
        return entry


class PullJob:
    """One pull in flight: its Ollama status lines so far, followed by any number of clients."""

    def __init__(self, name: GgufName, index: PulledIndex) -> None:
        self.name, self.index = name, index
        self.lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        self.error: PullError | None = None
        self.result: Pulled | None = None
        self.finished = False
        self.manifest = asyncio.Event()  # the hub listed the repo (or the pull failed before)
        self.done = asyncio.Event()
        self.digest: str | None = None  # the hub's sha256 of the GGUF, checked by the pull
        self.wake = asyncio.Event()
        self.last_line_at = 0.0
        self.task: asyncio.Task[None] | None = None

    def emit(self, line: dict[str, Any]) -> None:
        self.lines.append(line)
        self.wake.set()
        self.wake = asyncio.Event()

    def on_event(self, event: Event) -> None:
        if event.stage in ("file", "verifying", "done"):
            self.manifest.set()
        if event.sha256:
            self.digest = event.sha256
        if event.stage == "file" and event.sha256:
            now = time.monotonic()
            last = self.lines[-1]
            same_file = last.get("digest") == f"sha256:{event.sha256}"
            if same_file and event.completed < event.total and now - self.last_line_at < PROGRESS_EVERY_S:
                return
            self.last_line_at = now
            digest = event.sha256
            line = {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": event.total}
            self.emit({**line, "completed": event.completed})
        elif event.stage == "verifying":
            self.emit({"status": "verifying sha256 digest"})

    async def run(self) -> Pulled:
        loop = asyncio.get_running_loop()
        store = self.index.store
        candidates = gguf_candidates(self.name, configured_sources())
        if not candidates:
            raise PullError(f"{self.name.name} has no repo on the configured hubs", "not_found")

        def report(event: Event) -> None:
            loop.call_soon_threadsafe(self.on_event, event)

        def fetch() -> Path:
            return pull(self.name.hf_repo, candidates, one_gguf(self.name.quant), store=store, report=report)[0]

        path = await asyncio.to_thread(fetch)
        digest = self.digest
        if digest is None:  # the hub published no hash: the record carries the file's own
            digest = (await asyncio.to_thread(sha256_of, path)).hexdigest()
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
        return Pulled(self.name.hf_repo, path.name, digest, path.stat().st_size, when)

    def finish(self, result: Pulled | None, error: PullError | None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.manifest.set()
        self.done.set()
        self.emit({"error": error.message} if error else {"status": "success"})

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        sent = 0
        while True:
            while sent < len(self.lines):
                sent += 1
                yield self.lines[sent - 1]
            if self.finished:
                return
            await self.wake.wait()
