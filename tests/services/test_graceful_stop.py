"""SIGTERM stops a real service gracefully: it accepts nothing new, lets a slow request in flight
finish, and ends open NDJSON/SSE streams with an in-band error line rather than cutting them.

llm and tts run their upstream engines against a slow fake upstream that speaks OpenAI's wire format
(chat completions, SSE chunks trickling forever, /audio/speech), so the test controls the timing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from services.streaming import SHUTTING_DOWN
from tests.conftest import respond, service_process
from tts.audio import Audio, silence, to_wav

GRACE_S = 3.0
SLOW_S = 1.5  # the slow request finishes this long after it starts: inside the grace


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            respond(self, 200, {"object": "list", "data": [{"id": "slow", "object": "model", "owned_by": "test"}]})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.endswith("/audio/speech"):
                time.sleep(SLOW_S)
                respond(self, 200, to_wav(Audio(silence(0.5, 16000), 16000)), "audio/wav")
            elif body.get("stream"):
                self.trickle()
            else:
                time.sleep(SLOW_S)
                message = {"role": "assistant", "content": "finished in time"}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "slow"}
                respond(self, 200, {**completion, "choices": [choice]})

        def trickle(self) -> None:
            """A stream that never ends on its own: one token every 0.1 s."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(600):
                    delta = {"index": 0, "delta": {"content": "tick "}, "finish_reason": None}
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "slow"}
                    data = f"data: {json.dumps({**chunk, 'choices': [delta]})}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the service closed the upstream request: what it should do when its stream ends

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def served(name: str, env: dict[str, str]) -> AbstractContextManager[tuple[subprocess.Popen[bytes], str]]:
    return service_process(name, {**env, "LINGXI_GRACE_S": str(GRACE_S)}, ready_timeout_s=60)


class InFlight(threading.Thread):
    """One request in a thread: its status, its body lines as they came, and whether it got the first."""

    def __init__(self, method: str, url: str, **kwargs: object) -> None:
        super().__init__(daemon=True)
        self.method, self.url, self.kwargs = method, url, kwargs
        self.status: int | None = None
        self.lines: list[str] = []
        self.error: Exception | None = None
        self.started_body = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream(self.method, self.url, timeout=30, **self.kwargs) as response:  # type: ignore[arg-type]
                self.status = response.status_code
                for line in response.iter_lines():
                    if line:
                        self.lines.append(line)
                        self.started_body.set()
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.started_body.set()


def refuses_connections(base: str) -> bool:
    try:
        httpx.get(f"{base}/livez", timeout=1)
    except httpx.ConnectError:
        return True
    return False


def stop_and_time(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=GRACE_S + 5)
    return time.monotonic() - started


def test_sigterm_lets_a_slow_request_finish_and_ends_open_streams_in_band(upstream):
    env = {"LLM_ENGINE": "openai", "LLM_UPSTREAM_URL": upstream, "LLM_UPSTREAM_MODEL": "slow"}
    messages = [{"role": "user", "content": "hello"}]
    with served("llm", env) as (process, base):
        ndjson = InFlight("POST", f"{base}/api/chat/stream", json={"messages": messages})
        sse = InFlight("POST", f"{base}/v1/chat/completions", json={"messages": messages, "stream": True})
        assert ndjson.started_body.wait(10) and sse.started_body.wait(10)
        slow = InFlight("POST", f"{base}/api/chat", json={"messages": messages})
        time.sleep(0.3)  # the slow request is with the upstream now
        stopping = threading.Thread(target=stop_and_time, args=(process,))
        stopped_at = time.monotonic()
        stopping.start()
        time.sleep(0.5)
        assert refuses_connections(base)  # accepts nothing new
        for request in (slow, ndjson, sse):
            request.join(GRACE_S + 5)
        stopping.join()
        took = time.monotonic() - stopped_at

    assert slow.status == 200 and slow.error is None, (slow.error, slow.lines)
    assert json.loads("".join(slow.lines))["content"] == "finished in time"

    assert ndjson.status == 200 and ndjson.error is None, ndjson.error
    assert json.loads(ndjson.lines[0]) == {"delta": "tick "}
    assert json.loads(ndjson.lines[-1]) == {"error": SHUTTING_DOWN}

    assert sse.status == 200 and sse.error is None, sse.error
    assert json.loads(sse.lines[0].removeprefix("data: "))["choices"][0]["delta"]["content"] == "tick "
    last = json.loads(sse.lines[-1].removeprefix("data: "))
    assert last["error"]["message"] == SHUTTING_DOWN

    assert process.returncode is not None and took < GRACE_S + 2  # the grace bounds the stop


def test_flask_service_lets_a_slow_request_finish_after_sigterm(upstream):
    env = {"TTS_ENGINE": "upstream", "TTS_UPSTREAM_URL": upstream}
    with served("tts", env) as (process, base):
        slow = InFlight("POST", f"{base}/synthesize", data={"text": "Hello there.", "style": "style1"})
        time.sleep(0.5)
        stopping = threading.Thread(target=stop_and_time, args=(process,))
        stopping.start()
        time.sleep(0.5)
        assert refuses_connections(base)
        slow.join(GRACE_S + 5)
        stopping.join()
    assert slow.status == 200 and slow.error is None, slow.error
    assert process.returncode is not None
