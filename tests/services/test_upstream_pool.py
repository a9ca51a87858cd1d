"""The upstream clients' connection pool (httpx's, as ``services.upstream`` sets it), against a real
uvicorn server: connections are reused, bounded, given back when a stream ends early, not reused once
the server has closed them, and dropped before the server's keep-alive timer would close them."""

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
from services.errors import UpstreamUnreachable
from services.upstream import client_options, map_upstream_errors, upstream_client
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
    assert len(ports) <= 2  # the two connections went back to the pool and serve the next requests


def test_a_stream_left_early_gives_its_slot_back(upstream):
    async def leave_early() -> int:
        async with client(upstream, max_connections=1) as http:
            async with http.stream("GET", "/stream") as response:
                async for _ in response.aiter_bytes():
                    break  # the body is not read to the end: its connection is closed, not reused
            return (await http.get("/port")).status_code

    assert asyncio.run(leave_early()) == 200


def test_waiting_longer_than_the_connect_timeout_for_a_pooled_connection_is_an_error(upstream):
    async def wait_for_a_connection() -> None:
        async with client(upstream, max_connections=1, connect_timeout_s=0.2) as http:
            async with http.stream("GET", "/stream"):
                with map_upstream_errors("the test upstream"):
                    await http.get("/port")

    with pytest.raises(UpstreamUnreachable, match="could not reach the test upstream.*in time"):
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
    limits = client_options("http://127.0.0.1:1", timeout_s=1)["limits"]
    assert limits.keepalive_expiry < uvicorn.Config(counting_app()).timeout_keep_alive


def test_an_idle_connection_is_not_used_past_the_expiry(upstream):
    """A connection idle past the expiry is closed and the next request opens a new one, so a server's own
    keep-alive close never meets a request on its way."""

    async def across_the_expiry() -> tuple[int, int, int]:
        async with upstream_client(upstream, timeout_s=10) as http:
            first = (await http.get("/port")).json()["port"]
            again = (await http.get("/port")).json()["port"]
            await asyncio.sleep(client_options(upstream, timeout_s=1)["limits"].keepalive_expiry + 0.3)
            after = (await http.get("/port")).json()["port"]
        return first, again, after

    first, again, after = asyncio.run(across_the_expiry())
    assert first == again and after != first
