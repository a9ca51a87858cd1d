"""Shared fixtures: free ports, a tiny local HTTP server, a throw-away PostgreSQL, real sibling services."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.postgres import LocalPostgres

Route = Callable[[BaseHTTPRequestHandler], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    host: str
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    seen_hosts: list[str] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def html(self, path: str, text: str) -> str:
        """Serve ``text`` as an HTML page at ``path``; its URL."""
        self.routes[path] = reply(200, text.encode(), "text/html; charset=utf-8")
        return self.url(path)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with serve_routes() as server:
        yield server


@contextmanager
def serve_routes() -> Iterator[LocalServer]:
    """A threaded HTTP server on 127.0.0.1; tests register routes as ``server.routes[path] = fn``."""
    state = LocalServer("127.0.0.1", 0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.seen_hosts.append(self.headers.get("Host", ""))
            route = state.routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            route(self)

        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # clients that hang up early (deadline tests) are expected

    server = QuietServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    """Write one whole response: ``body`` as it is when bytes, else as JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def reply(status: int, body: bytes = b"", content_type: str = "text/html", headers: dict[str, str] | None = None):
    """A route that answers with a fixed response."""
    return lambda handler: respond(handler, status, body, content_type, headers)


def image_bytes(color: Any = "red", size: tuple[int, int] = (64, 48), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def world_readable_tmpdir(prefix: str) -> Path:
    """A temp dir the ``postgres`` user can reach (pytest's own tmp dirs are private to root).

    It is removed when the test run ends, so runs do not fill the disk.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[LocalPostgres]:
    """A throw-away project-local PostgreSQL cluster for the whole test session."""
    root = world_readable_tmpdir("lingxi-pg-")
    database = LocalPostgres(root / "postgres", port=free_port())
    database.start()
    yield database
    database.stop()
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serve_app(app: Any, **config: Any) -> Iterator[str]:
    """Run the ASGI ``app`` with uvicorn in a thread on a free port of 127.0.0.1; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def wait_for_health(client: Any, *, settled: bool = False, timeout_s: float = 60) -> Any:
    """GET ``/health`` on ``client`` (TestClient, httpx or Flask client) until it answers 200, or with ``settled``
    until the engine is no longer loading (whatever it became); return that response."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get("/health")
        done = json.loads(response.text)["status"] != "loading" if settled else response.status_code == 200
        if done:
            return response
        assert time.monotonic() < deadline, f"/health did not settle within {timeout_s:.0f} s: {response.text}"
        time.sleep(0.05)


def wait_healthy(process: subprocess.Popen[bytes], health_url: str, timeout_s: float, what: str = "") -> None:
    """Wait until ``health_url`` answers 200; fail if ``process`` (``what``) exits first or ``timeout_s`` passes."""
    what = what or health_url
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(health_url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not healthy within {timeout_s:.0f} s")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it outlives ``timeout_s``; nothing if it has already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_service(
    name: str,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 240,
    log: Path | None = None,
    tree: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a real lingxi service (the code ``lingxi up`` runs) on a free port; return it and its base URL
    once ``/health`` answers 200. Its output goes to ``log`` (appended) when given; ``tree`` serves another
    checkout's code (a benchmark's before and after)."""
    port = free_port()
    child_env = {**os.environ, **(env or {}), f"{name.upper()}_PORT": str(port), f"{name.upper()}_HOST": "127.0.0.1"}
    command = [sys.executable, "-m", "services.cli", "serve", name]
    if log is None:
        process = subprocess.Popen(command, env=child_env, cwd=tree, stdout=subprocess.DEVNULL)
    else:
        with open(log, "ab") as output:
            process = subprocess.Popen(command, env=child_env, cwd=tree, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, f"{base}/health", ready_timeout_s, name if log is None else f"{name} (log: {log})")
    except BaseException:
        stop_process(process)
        raise
    return process, base


@contextmanager
def service_process(
    name: str, env: dict[str, str] | None = None, ready_timeout_s: float = 240
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``start_service`` for the length of a block, stopped at its end."""
    process, base = start_service(name, env, ready_timeout_s)
    try:
        yield process, base
    finally:
        stop_process(process)


@contextmanager
def running_service(name: str, env: dict[str, str] | None = None, ready_timeout_s: float = 240) -> Iterator[str]:
    """A real lingxi service's base URL for the length of a block."""
    with service_process(name, env, ready_timeout_s) as (_, base):
        yield base


@pytest.fixture(scope="session")
def embedding_service() -> Iterator[str]:
    """The real embedding service with its embedded default model (use-multilingual-v3), for the whole session."""
    with running_service("embedding") as base:
        yield base


@pytest.fixture(scope="session")
def llm_service() -> Iterator[str]:
    """The real llm service on the embedded SmolLM2-135M (``smollm2:135m``), for the whole session: the
    services that call it test their own pipelines, and it answers three times as fast as the default
    Qwen (whose answers tests/llm/test_qwen.py checks). Its queue is deep enough for the concurrency
    tests of the services that call it."""
    with running_service("llm", {"LLM_LOCAL_MAX_QUEUE": "64", "LLM_EMBEDDED_MODEL": "smollm2:135m"}) as base:
        yield base
