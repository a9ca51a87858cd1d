"""Fuzzing every opro route from its OpenAPI schema (tests/fuzz.py), on an opro of its own (its own
data dir) over the real embedding service and an LLM upstream that answers at once in OpenAI's wire
format: opro's own code is what is fuzzed, and SmolLM2 would take minutes to write the answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from opro.tasks import TaskSpec
from tests.fuzz import fuzz, json_body
from tests.opro.conftest import serve, settings_for


@pytest.fixture(scope="module")
def quick_llm() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.answer({"object": "list", "data": [{"id": "quick", "object": "model", "owned_by": "test"}]})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            message = {"role": "assistant", "content": "[Think step by step.] The answer is 4."}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self.answer({"id": "x", "object": "chat.completion", "created": 0, "model": "quick", "choices": [choice]})

        def answer(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_no_opro_request_gets_a_5xx_or_no_answer(quick_llm, embedding_service, tmp_path):
    with serve(settings_for(quick_llm, embedding_service, tmp_path)) as opro, opro.client() as client:
        openapi = client.get("/openapi.json").json()
        bodies = {"POST /optimize": json_body(openapi, TaskSpec)}  # read by the route itself
        findings = fuzz(openapi, lambda request: client.request(**request, timeout=60), request_bodies=bodies)
    print(findings.report())
    assert findings.problems == [], "\n".join(findings.problems)
