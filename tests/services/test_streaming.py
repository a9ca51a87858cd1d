import asyncio
import json
import threading

import httpx
from fastapi.testclient import TestClient

from services.app import create_app
from services.errors import UpstreamError
from services.health import Health, Status
from services.settings import ServiceSettings
from services.streaming import ndjson_response, sse_response
from tests.conftest import serve_app

cleaned_up = threading.Event()


def make_app():
    app = create_app(ServiceSettings(), name="demo", health=lambda: Health(Status.ok))

    async def words(fail: bool):
        for word in ["你好", "world"]:
            yield {"delta": word}
        if fail:
            raise UpstreamError("upstream went away")
        yield {"event": "done"}

    async def endless():
        try:
            while True:
                yield {"delta": "tick"}
                await asyncio.sleep(0.05)
        finally:
            cleaned_up.set()

    @app.get("/ndjson")
    async def ndjson(fail: bool = False):
        return ndjson_response(words(fail))

    @app.get("/sse")
    async def sse(fail: bool = False):
        return sse_response(words(fail))

    @app.get("/endless")
    async def endless_route():
        return ndjson_response(endless())

    return app


def test_ndjson_lines_and_in_band_errors():
    client = TestClient(make_app())
    response = client.get("/ndjson")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.splitlines() == ['{"delta": "你好"}', '{"delta": "world"}', '{"event": "done"}']
    failed = [json.loads(line) for line in client.get("/ndjson?fail=true").text.splitlines()]
    assert failed[-1] == {"error": "upstream went away"}
    assert failed[0] == {"delta": "你好"}


def test_sse_events_end_with_done_or_an_error_event():
    client = TestClient(make_app())
    response = client.get("/sse")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0]) == {"delta": "你好"}
    failed = [line for line in client.get("/sse?fail=true").text.split("\n\n") if line]
    assert json.loads(failed[-1][len("data: ") :])["error"]["message"] == "upstream went away"


def test_client_disconnect_stops_the_stream_and_runs_its_cleanup():
    with serve_app(make_app()) as url:
        with httpx.stream("GET", f"{url}/endless") as response:
            lines = response.iter_lines()
            assert json.loads(next(lines)) == {"delta": "tick"}
        assert cleaned_up.wait(timeout=5), "the generator was not closed after the client went away"
