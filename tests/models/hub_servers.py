"""Local servers that speak the Hugging Face Hub's and ModelScope's real HTTP APIs, for a few repos.

Hugging Face (as ``huggingface_hub`` reads it): ``GET /api/models/{repo}[/revision/{rev}]?blobs=True``
lists the files (``siblings`` with ``size`` and ``lfs.sha256``); ``HEAD /{repo}/resolve/{rev}/{file}``
answers an LFS file with a 302 to a CDN host (here ``localhost`` instead of ``127.0.0.1``) carrying
``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``; the CDN honours ``Range``.
ModelScope (as ``modelscope`` reads it): ``GET /api/v1/models/{repo}/repo/files`` lists ``Path``,
``Size``, ``Sha256`` in its ``{"Code": 200, "Data": {"Files": [...]}}`` envelope, and
``GET /api/v1/models/{repo}/repo?Revision=&FilePath=`` serves the bytes, ``Range`` included.

``pause_at`` stops one body after that many bytes until ``resume`` is set, then drops the connection;
``corrupt`` flips a byte of what is served; ``rate`` paces bodies as a network link would; ``sent``
counts body bytes; ``tokens`` the bearer tokens seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Blob:
    path: Path  # served from disk, so 100 MB files cost no memory

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        self.size = self.path.stat().st_size


@dataclass
class Hub:
    repos: dict[str, dict[str, Blob]] = field(default_factory=dict)
    port: int = 0
    sent: int = 0
    requests: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    pause_at: int | None = None
    paused: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)
    corrupt: bool = False
    rate: float | None = None  # bytes per second per response, as over a network link of that speed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, repo: str, name: str, path: Path) -> Blob:
        blob = Blob(path)
        self.repos.setdefault(repo, {})[name] = blob
        return blob


def lfs(blob: Blob) -> dict[str, object]:
    return {"sha256": blob.sha256, "size": blob.size, "pointerSize": 134}


class Handler(BaseHTTPRequestHandler):
    hub: Hub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self.route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self.route(head=False)

    def route(self, head: bool) -> None:
        hub = self.hub
        hub.requests.append(f"{self.command} {self.path}")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            hub.tokens.append(auth.removeprefix("Bearer "))
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+?)(?:/revision/[^/]+)?", path):
            return self.hf_info(match.group(1))
        if match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self.hf_resolve(match.group(1), match.group(3), head)
        if match := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            return self.serve_blob(self.by_sha(match.group(1)), head)
        if match := re.fullmatch(r"/api/v1/models/([^/]+/[^/]+)/repo/files", path):
            return self.ms_files(match.group(1))
        if match := re.fullmatch(r"/api/v1/models/([^/]+/[^/]+)/repo", path):
            blob = hub.repos.get(match.group(1), {}).get(query.get("FilePath", [""])[0])
            return self.serve_blob(blob, head)
        if match := re.fullmatch(r"/api/v1/models/([^/]+/[^/]+)/revisions", path):
            branches = [{"Revision": "master", "CommitId": COMMIT}]
            return self.json({"Code": 200, "Data": {"RevisionMap": {"Branches": branches, "Tags": []}}})
        self.json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})

    def by_sha(self, sha: str) -> Blob | None:
        return next((b for files in self.hub.repos.values() for b in files.values() if b.sha256 == sha), None)

    def json(self, body: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def hf_info(self, repo: str) -> None:
        files = self.hub.repos.get(repo)
        if files is None:
            return self.json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
        siblings = [
            {"rfilename": name, "size": b.size, "blobId": b.sha256[:40], "lfs": lfs(b)} for name, b in files.items()
        ]
        self.json({"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings})

    def hf_resolve(self, repo: str, name: str, head: bool) -> None:
        blob = self.hub.repos.get(repo, {}).get(name)
        if blob is None:
            return self.json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
        self.send_response(302)
        self.send_header("Location", f"http://localhost:{self.hub.port}/cdn/{blob.sha256}")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("X-Linked-Etag", f'"{blob.sha256}"')
        self.send_header("X-Linked-Size", str(blob.size))
        self.send_header("ETag", f'"{blob.sha256[:40]}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def ms_files(self, repo: str) -> None:
        files = self.hub.repos.get(repo)
        if files is None:
            return self.json({"Code": 10010205001, "Message": "model not found", "Success": False}, 404)
        rows = [
            {"Name": Path(n).name, "Path": n, "Size": b.size, "Sha256": b.sha256, "Type": "blob", "IsLFS": True}
            for n, b in files.items()
        ]
        self.json({"Code": 200, "Data": {"Files": rows}, "Message": "success", "Success": True})

    def serve_blob(self, blob: Blob | None, head: bool) -> None:
        if blob is None:
            return self.json({"error": "not found"}, 404)
        start, end = 0, blob.size - 1
        if match := RANGE.fullmatch(self.headers.get("Range", "")):
            start = int(match.group(1))
            end = min(int(match.group(2)), end) if match.group(2) else end
        if start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{blob.size}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{end}/{blob.size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{blob.sha256}"')
        self.end_headers()
        if not head:
            self.send_body(blob, start, end + 1)

    def send_body(self, blob: Blob, start: int, stop: int) -> None:
        hub = self.hub
        with blob.path.open("rb") as f:
            if hub.corrupt:
                f.seek(start)
                data = bytearray(f.read(stop - start))
                data[len(data) // 2] ^= 0xFF
                self.wfile.write(data)
                hub.sent += len(data)
                return
            position = start
            if hub.pause_at is not None and start < hub.pause_at < stop:
                position += self.connection.sendfile(f, start, hub.pause_at - start)
                hub.sent += position - start
                hub.pause_at = None  # once
                hub.paused.set()
                hub.resume.wait(60)
                self.close_connection = True  # the link drops with the rest unsent
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            started = time.monotonic()
            while position < stop:
                step = stop - position if hub.rate is None else min(stop - position, 1 << 20)
                count = self.connection.sendfile(f, position, step)
                if count == 0:
                    break
                position += count
                hub.sent += count
                if hub.rate is not None:  # pace to the link's speed
                    time.sleep(max(0.0, started + (position - start) / hub.rate - time.monotonic()))


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients interrupted on purpose hang up mid-body


@contextmanager
def serve(hub: Hub) -> Iterator[Hub]:
    handler = type("HubHandler", (Handler,), {"hub": hub})
    server = QuietServer(("127.0.0.1", 0), handler)
    hub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.resume.set()
        server.shutdown()
        server.server_close()


def smol_gguf() -> Path:
    """The embedded SmolLM2-135M GGUF (about 90 MB), as the llm package installs it."""
    from llm.embedded import SMOLLM2

    return SMOLLM2.path(Path(os.devnull))
