"""The upstream clients' connection pool, against a real uvicorn server: connections are reused, bounded,
given back when a stream ends early, and not reused once the server has closed them."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from services.clients import ServiceClient
from services.errors import UpstreamError, UpstreamTimeout
from services.keepalive import KeepAliveTransport
from services.upstream import map_upstream_errors, upstream_client
from tests.conftest import free_port


def counting_app() -> FastAPI:
    app = FastAPI()
    app.state.busy = app.state.most_busy = 0

    @app.get("/port")
    async def port(request: Request) -> dict:
        assert request.client is not None
        return {"port": request.client.port}  # the client's side of the connection: equal means reused

    @app.get("/slow")
    async def slow() -> dict:
        app.state.busy += 1
        app.state.most_busy = max(app.state.most_busy, app.state.busy)
        await asyncio.sleep(0.2)
        app.state.busy -= 1
        return {}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines():
            for i in range(100):
                yield f"line {i}\n".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(lines())

    return app


@contextmanager
def serving(app: FastAPI, keep_alive_s: int = 5) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=keep_alive_s)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return counting_app()


@pytest.fixture(scope="module")
def upstream(app: FastAPI) -> Iterator[str]:
    with serving(app) as url:
        yield url


def client(url: str, **options) -> httpx.AsyncClient:
    return upstream_client(url, timeout_s=10, **options)


def test_requests_one_after_another_share_one_connection(upstream):
    async def ports() -> set[int]:
        async with client(upstream) as http:
            return {(await http.get("/port")).json()["port"] for _ in range(5)}

    assert len(asyncio.run(ports())) == 1


def test_json_calls_share_the_pool_and_its_bound(upstream, app):
    async def calls() -> tuple[set[int], list[dict]]:
        json_client = ServiceClient(upstream, name="the test upstream", max_connections=2)
        try:
            ports = {(await json_client.get_json("/port"))["port"] for _ in range(5)}
            app.state.most_busy = 0
            answers = await asyncio.gather(*(json_client.get_json("/slow") for _ in range(6)))
        finally:
            await json_client.aclose()
        return ports, answers

    ports, answers = asyncio.run(calls())
    assert len(ports) == 1 and answers == [{}] * 6 and app.state.most_busy == 2


def test_at_most_max_connections_requests_are_in_flight(upstream, app):
    async def burst() -> tuple[list[int], set[int]]:
        async with client(upstream, max_connections=2) as http:
            responses = await asyncio.gather(*(http.get("/slow") for _ in range(6)))
            ports = {(await http.get("/port")).json()["port"] for _ in range(3)}
        return [response.status_code for response in responses], ports

    statuses, ports = asyncio.run(burst())
    assert statuses == [200] * 6 and app.state.most_busy == 2
    assert len(ports) == 1  # the two connections went back to the pool; one serves requests one at a time


def test_a_stream_left_early_gives_its_slot_back(upstream):
    async def leave_early() -> int:
        async with client(upstream, max_connections=1) as http:
            async with http.stream("GET", "/stream") as response:
                async for _ in response.aiter_bytes():
                    break  # the body is not read to the end: its connection is closed, not reused
            return (await http.get("/port")).status_code

    assert asyncio.run(leave_early()) == 200


def test_waiting_longer_than_the_pool_timeout_is_a_504(upstream):
    async def wait_for_a_connection() -> None:
        async with client(upstream, max_connections=1, connect_timeout_s=0.2) as http:
            async with http.stream("GET", "/stream"):
                with map_upstream_errors("the test upstream"):
                    await http.get("/port")

    with pytest.raises(UpstreamTimeout, match="the test upstream timed out"):
        asyncio.run(wait_for_a_connection())


def test_a_connection_the_server_closed_is_not_reused():
    async def across_the_servers_keep_alive() -> set[int]:
        async with client(url) as http:
            first = (await http.get("/port")).json()["port"]
            await asyncio.sleep(1.5)  # uvicorn closes an idle connection after 1 s here
            second = (await http.get("/port")).json()["port"]
        return {first, second}

    with serving(counting_app(), keep_alive_s=1) as url:
        assert len(asyncio.run(across_the_servers_keep_alive())) == 2


def test_idle_connections_are_dropped_before_uvicorn_would_close_them():
    transport = KeepAliveTransport(max_connections=1)
    assert transport.keepalive_expiry_s < uvicorn.Config(counting_app()).timeout_keep_alive


# --- a server whose keep-alive close crosses the next request, on raw sockets ---------------------
class ClosingOnReuse:
    """Answers the first request on each connection (echoing its body) and closes the connection, unanswered,
    when the next one arrives: what a server does when its keep-alive timer fires as a request reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bytes]] = []  # (connection number, body) of every request read

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len({number for number, _ in self.seen}) + 1
        try:
            for answered in (True, False):
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(content_length(head))
                self.seen.append((connection, body))
                if answered:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


def content_length(head: bytes) -> int:
    lines = head.lower().split(b"\r\n")
    return next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))


async def closing_on_reuse_server() -> tuple[asyncio.Server, ClosingOnReuse, str]:
    handler = ClosingOnReuse()
    server = await asyncio.start_server(handler.serve, "127.0.0.1", 0)
    return server, handler, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_a_request_the_servers_keep_alive_close_crosses_goes_once_more_on_a_new_connection():
    first, second = '{"text": "第一个"}'.encode(), '{"text": "第二个 second"}'.encode()

    async def two_posts() -> tuple[list[bytes], list[tuple[int, bytes]]]:
        server, handler, url = await closing_on_reuse_server()
        async with server, client(url) as http:
            answers = [(await http.post("/", content=body)).content for body in (first, second)]
        return answers, handler.seen

    answers, seen = asyncio.run(two_posts())
    assert answers == [first, second]
    assert seen == [(1, first), (1, second), (2, second)]  # the second, unanswered on connection 1, again on 2


def test_a_json_call_the_servers_keep_alive_close_crosses_goes_once_more_on_a_new_connection():
    first, second = {"text": "第一个"}, {"text": "第二个 second"}

    async def two_calls() -> tuple[list[dict], list[int]]:
        server, handler, url = await closing_on_reuse_server()
        json_client = ServiceClient(url, name="the test upstream")
        async with server:
            try:
                answers = [await json_client.post_json("/", body) for body in (first, second)]
            finally:
                await json_client.aclose()
        return answers, [number for number, _ in handler.seen]

    assert asyncio.run(two_calls()) == ([first, second], [1, 1, 2])


def test_a_streamed_body_is_not_sent_again():
    async def post_streamed() -> list[tuple[int, bytes]]:
        async def parts():
            yield "流式".encode()

        server, handler, url = await closing_on_reuse_server()
        async with server, client(url) as http:
            await http.post("/", content=b"{}")
            with pytest.raises(UpstreamError, match="the test upstream failed: ClosedWithoutAnswer"):
                with map_upstream_errors("the test upstream"):
                    await http.post("/", content=parts(), headers={"Content-Length": str(len("流式".encode()))})
        return handler.seen

    assert [number for number, _ in asyncio.run(post_streamed())] == [1, 1]


def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_second_try():
    seen = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def post() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        async with server, client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}") as http:
            with map_upstream_errors("the test upstream"):
                await http.post("/", content=b"{}")

    with pytest.raises(UpstreamError, match="the test upstream failed: ClosedWithoutAnswer"):
        asyncio.run(post())
    assert seen == 1
