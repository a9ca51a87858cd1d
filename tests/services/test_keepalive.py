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

from services.errors import UpstreamTimeout
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
