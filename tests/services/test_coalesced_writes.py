"""A response's writes reach the socket as one; nothing is lost, reordered or held past one loop turn."""

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from websockets.sync.client import connect

from services.coalesced_writes import CoalescingTransport, coalescing_http_protocol
from tests.conftest import serve_app


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False
        self.buffered = 0

    def write(self, data) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def in_a_loop(test):
    def run():
        asyncio.run(test())

    run.__name__ = test.__name__
    return run


async def one_turn() -> None:
    await asyncio.sleep(0)


@in_a_loop
async def test_the_writes_of_one_loop_turn_go_out_as_one_write_in_order():
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n")
    transport.write(bytearray(b"\xe4\xbd\xa0"))
    transport.write(memoryview(b"\xe5\xa5\xbd"))
    transport.write(b"")
    assert inner.writes == [] and transport.get_write_buffer_size() == 44
    await one_turn()
    assert inner.writes == ["HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n你好".encode()]
    transport.write(b"next")
    await one_turn()
    assert inner.writes[1:] == [b"next"]


@in_a_loop
async def test_a_large_body_goes_out_as_soon_as_64_kib_are_pending():
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    block = b"x" * 40_000
    transport.write(block)
    assert inner.writes == []
    transport.write(block)  # the socket sees it now, and with it the transport's flow control
    assert inner.writes == [block * 2] and transport.get_write_buffer_size() == 0
    transport.write(block)
    await one_turn()
    assert inner.writes == [block * 2, block]


@in_a_loop
async def test_close_sends_what_is_pending_first_and_abort_drops_it():
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await one_turn()  # the flush already scheduled finds nothing left
    assert inner.writes == [b"last words"]

    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await one_turn()
    assert inner.writes == [] and inner.aborted


@in_a_loop
async def test_nothing_is_written_to_a_connection_already_lost():
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"too late")
    inner.closed = True  # the peer went away in the same turn
    await one_turn()
    assert inner.writes == []
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest passes through


SOCKET_WRITES: list[bytes] = []


class CountingTransport:
    """The socket's transport, each write it gets recorded."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def write(self, data) -> None:
        SOCKET_WRITES.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


def counted(protocol: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    class Counted(protocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(CountingTransport(transport))

    return Counted


@pytest.fixture(scope="module")
def server():
    app = FastAPI()

    @app.get("/json")
    async def json_answer() -> dict:
        return {"text": "你好, world", "n": 42}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events():
            for i in range(3):
                yield f"data: 第{i}块\n\n".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/big")
    async def big() -> StreamingResponse:
        async def blocks():
            for i in range(64):
                yield bytes([65 + i % 26]) * 65536  # 4 MiB: past the socket's buffer, so flow control works

        return StreamingResponse(blocks(), media_type="application/octet-stream")

    @app.get("/slow-tail")
    async def slow_tail() -> dict:
        return {"text": "答案先到"}

    class SlowTail:  # work after the last byte (a log line, metrics) that holds the event loop
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            await self.app(scope, receive, send)
            if scope.get("path") == "/slow-tail":
                time.sleep(0.5)  # noqa: ASYNC251 (blocking on purpose)

    app.add_middleware(SlowTail)

    @app.websocket("/echo")
    async def echo(socket: WebSocket) -> None:  # an upgraded connection keeps the coalescing transport
        await socket.accept()
        while True:
            text = await socket.receive_text()
            await socket.send_text(f"回声: {text}")

    with serve_app(app, http=counted(coalescing_http_protocol())) as url:
        yield url


def test_a_whole_response_goes_out_in_one_write(server):
    SOCKET_WRITES.clear()
    with httpx.Client(base_url=server) as client:
        for _ in range(3):  # keep-alive: each response of the connection the same way
            assert client.get("/json").json() == {"text": "你好, world", "n": 42}
    assert len(SOCKET_WRITES) == 3, SOCKET_WRITES
    for data in SOCKET_WRITES:
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == '{"text":"你好, world","n":42}'.encode()


def test_a_complete_response_leaves_before_the_app_has_finished(server):
    with httpx.Client(base_url=server, timeout=10) as client:
        started = time.perf_counter()
        assert client.get("/slow-tail").json() == {"text": "答案先到"}
        assert time.perf_counter() - started < 0.35


def test_streams_and_large_bodies_arrive_whole_and_in_order(server):
    with httpx.Client(base_url=server, timeout=10) as client:
        with client.stream("GET", "/stream") as response:
            assert [line for line in response.iter_lines() if line] == ["data: 第0块", "data: 第1块", "data: 第2块"]
        big = client.get("/big").content
        assert len(big) == 64 * 65536
        assert all(big[i * 65536 : (i + 1) * 65536] == bytes([65 + i % 26]) * 65536 for i in range(64))
        assert client.get("/json").json() == {"text": "你好, world", "n": 42}


def test_a_websocket_upgraded_from_it_works_both_ways(server):
    with connect(server.replace("http://", "ws://") + "/echo", open_timeout=5) as socket:
        for text in ("hello", "你好"):
            socket.send(text)
            assert socket.recv(timeout=5) == f"回声: {text}"
