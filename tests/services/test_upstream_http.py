"""The upstream client (httpx, as ``services.upstream`` configures it, under ``ServiceClient``), against
real servers: uvicorn for what a well-behaved upstream sends, raw sockets for what a broken one does.
Each failure must reach the caller as lingxi's 502/504, never hang, never leave a connection that a
later request would read a stale answer from."""

from __future__ import annotations

import asyncio
import gzip
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from services.clients import ServiceClient
from services.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from services.upstream import map_upstream_errors, upstream_client
from tests.conftest import free_port, serve_app
from tests.services.raw_servers import Handler, raw_server

CHINESE = "上海的天气怎么样？请用中文回答。"
BIG_JSON = {"rows": [f"{i} {CHINESE}" for i in range(30000)]}  # 1.5 MB


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        body = await request.body()
        return {"text": body.decode(), "bytes": len(body), "chunked": "transfer-encoding" in request.headers}

    @app.get("/big")
    async def big() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(80):
                yield bytes([i]) * 65536  # 5 MiB in all, faster than a slow reader takes it

        return StreamingResponse(parts())

    @app.get("/json/big")
    async def big_json() -> Response:
        return Response(orjson.dumps(BIG_JSON), media_type="application/json")

    @app.get("/json/chunked")
    async def chunked_json() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            text = orjson.dumps({"text": CHINESE, "n": 3})
            for i in range(0, len(text), 7):  # cut inside a character too
                yield text[i : i + 7]
                await asyncio.sleep(0.01)

        return StreamingResponse(parts(), media_type="application/json")

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"data: {i} {CHINESE}\n\n".encode()
                await asyncio.sleep(0.3)

        return StreamingResponse(lines(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def upstream() -> str:
    with serve_app(echo_app()) as url:
        yield url


def run(make: Callable[[], Awaitable]) -> object:
    return asyncio.run(make())


def test_a_body_with_chinese_goes_and_comes_back_intact(upstream):
    async def echo() -> dict:
        async with upstream_client(upstream, timeout_s=10) as http:
            return (await http.post("/echo", content=CHINESE.encode())).json()

    assert run(echo) == {"text": CHINESE, "bytes": len(CHINESE.encode()), "chunked": False}


def test_a_streamed_request_body_is_sent_chunked(upstream):
    async def parts() -> AsyncIterator[bytes]:
        for word in ("上海", " weather", "", " 天气"):
            yield word.encode()

    async def echo() -> dict:
        async with upstream_client(upstream, timeout_s=10) as http:
            return (await http.post("/echo", content=parts())).json()

    assert run(echo) == {"text": "上海 weather 天气", "bytes": len("上海 weather 天气".encode()), "chunked": True}


def test_events_arrive_as_the_upstream_sends_them(upstream):
    async def arrival_times() -> list[tuple[float, bytes]]:
        async with upstream_client(upstream, timeout_s=10) as http:
            started = time.monotonic()
            async with http.stream("GET", "/events") as response:
                return [(time.monotonic() - started, line) async for line in response.aiter_lines() if line]

    events = run(arrival_times)
    assert [line for _, line in events] == [f"data: {i} {CHINESE}" for i in range(3)]
    assert events[0][0] < 0.25  # the first event was not held back until the stream ended (at 0.9 s)


def test_a_large_body_read_slowly_arrives_whole(upstream):
    async def slow_reader() -> tuple[bytes, int]:
        async with upstream_client(upstream, timeout_s=10) as http:
            parts = []
            async with http.stream("GET", "/big") as response:
                async for part in response.aiter_raw():
                    parts.append(part)
                    await asyncio.sleep(0.001)
            again = (await http.post("/echo", content=b"next")).status_code  # on the same connection
        return b"".join(parts), again

    body, again = run(slow_reader)
    assert body == b"".join(bytes([i]) * 65536 for i in range(80)) and again == 200


def json_calls(url: str, *paths: str) -> list:
    async def go() -> list:
        client = ServiceClient(url, name="the test upstream", timeout_s=10)
        try:
            return [await client.get_json(path) for path in paths]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_large_or_chunked_json_answer_arrives_whole(upstream):
    big, chunked, again = json_calls(upstream, "/json/big", "/json/chunked", "/json/big")
    assert big == BIG_JSON and again == BIG_JSON
    assert chunked == {"text": CHINESE, "n": 3}


def raw_json_upstream(answer: bytes) -> Handler:
    async def handle(reader, writer):
        writer.write(answer)
        await writer.drain()

    return handle


def json_call_against(handle: Handler) -> object:
    async def go() -> object:
        server, url = await raw_server(handle)
        async with server:
            client = ServiceClient(url, name="the test upstream", timeout_s=5)
            try:
                return await client.get_json("/")
            finally:
                await client.aclose()

    return asyncio.run(go())


def test_a_gzip_compressed_json_answer_is_read():
    body = gzip.compress(orjson.dumps({"text": CHINESE}))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    answer = head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    assert json_call_against(raw_json_upstream(answer)) == {"text": CHINESE}


def test_a_json_answer_with_nan_as_python_writes_it_is_read():
    body = b'{"score": NaN, "text": "\xe4\xbd\xa0\xe5\xa5\xbd"}'
    answer = json_call_against(
        raw_json_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    )
    assert isinstance(answer, dict) and math.isnan(answer["score"]) and answer["text"] == "你好"


def test_an_answer_that_is_not_json_is_a_502_naming_the_upstream():
    body = "<html>网关错误</html>".encode()
    with pytest.raises(UpstreamError, match="the test upstream at .* answered with something that is not JSON"):
        json_call_against(raw_json_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)))


# --- broken upstreams, on raw sockets ------------------------------------------------------------
async def fetch(url: str, timeout_s: float = 5) -> bytes:
    async with upstream_client(url, timeout_s=timeout_s) as http:
        with map_upstream_errors("the test upstream"):
            return (await http.get("/")).content


def against(handle: Handler, timeout_s: float = 5) -> bytes:
    async def go() -> bytes:
        server, url = await raw_server(handle)
        async with server:
            return await fetch(url, timeout_s)

    return asyncio.run(go())


def test_a_body_cut_short_is_a_502_not_a_truncated_answer():
    async def cut(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"partial": "')
        await writer.drain()

    with pytest.raises(UpstreamError, match="the test upstream failed: RemoteProtocolError"):
        against(cut)


def test_an_answer_that_is_not_http_is_a_502():
    async def garbage(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    with pytest.raises(UpstreamError, match="RemoteProtocolError"):
        against(garbage)


def test_closing_without_an_answer_is_a_502():
    async def hang_up(reader, writer):
        pass

    with pytest.raises(UpstreamError, match="the test upstream failed: RemoteProtocolError"):
        against(hang_up)


def test_an_upstream_that_never_answers_is_a_504_after_the_read_timeout():
    async def silent(reader, writer):
        await asyncio.sleep(10)

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="timed out"):
        against(silent, timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_a_body_that_ends_with_the_connection_is_read_to_its_end():
    async def http10(reader, writer):
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        writer.write(CHINESE.encode() * 3)
        await writer.drain()

    assert against(http10).decode() == CHINESE * 3


def test_a_refused_connection_is_unreachable():
    with pytest.raises(UpstreamUnreachable, match="could not reach the test upstream"):
        asyncio.run(fetch(f"http://127.0.0.1:{free_port()}"))


def test_an_answer_that_asks_to_close_is_not_reused():
    connections = []

    async def once(reader, writer):
        connections.append(writer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.5)  # keeps the socket open: the client must not send a second request on it

    async def twice() -> list[bytes]:
        server, url = await raw_server(once)
        async with server, upstream_client(url, timeout_s=5) as http:
            return [(await http.get("/")).content for _ in range(2)]

    assert asyncio.run(twice()) == [b"ok", b"ok"]
    assert len(connections) == 2


def test_the_answer_to_head_has_no_body_even_with_a_length():
    async def head(reader, writer):
        for _ in range(2):  # the same connection serves the second request
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")

    async def twice() -> list[tuple[int, bytes]]:
        server, url = await raw_server(head)
        async with server, upstream_client(url, timeout_s=2) as http:
            return [((r := await http.head("/")).status_code, r.content) for _ in range(2)]

    started = time.monotonic()
    assert asyncio.run(twice()) == [(200, b""), (200, b"")]
    assert time.monotonic() - started < 1  # not the read timeout's 2 s, waiting for 10 bytes that never come
