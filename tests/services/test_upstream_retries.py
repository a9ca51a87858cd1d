"""When a request to an upstream goes again: when it never left (no connection could be made), or once
when its method is idempotent (RFC 9110 §9.2.2). A chat completion to a paid upstream, or an ingest, that
the upstream read and then dropped runs once, and its caller gets a 502 in the protocol it spoke."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from fastapi.testclient import TestClient

from llm.app import create_app
from llm.config import Settings
from services.clients import ServiceClient
from services.errors import UpstreamError
from tests.conftest import free_port
from tests.services.raw_servers import HangingUpOnPosts, content_length

NO_SIBLINGS = {"embedding_url": "", "asr_url": "", "tts_url": ""}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "请只回答一次"}]}


def call(client: ServiceClient, method: str, path: str, body: dict | None = None) -> object:
    async def go() -> object:
        try:
            return await (client.post_json(path, body or {}) if method == "POST" else client.get_json(path))
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_post_the_upstream_read_and_dropped_is_sent_once_and_is_a_502():
    with HangingUpOnPosts() as upstream:
        client = ServiceClient(upstream.url, name="the test upstream", retries=2)
        client.retry_delay_s = 0.01
        with pytest.raises(UpstreamError, match="the test upstream at .* failed: RemoteProtocolError") as caught:
            call(client, "POST", "/v1/chat/completions", CHAT)
    assert caught.value.status_code == 502
    assert [orjson.loads(body) for body in upstream.posts] == [CHAT]


@pytest.fixture(scope="module")
def gateway():
    """lingxi llm, ``openai`` engine, in front of an upstream that drops every POST it has read."""
    with HangingUpOnPosts(b'{"object": "list", "data": [{"id": "m", "object": "model"}]}') as upstream:
        settings = Settings(engine="openai", upstream_url=f"{upstream.url}/v1", upstream_model="m", **NO_SIBLINGS)
        with TestClient(create_app(settings)) as client:
            yield client, upstream


@pytest.mark.parametrize("stream", [False, True])
def test_the_gateways_caller_gets_openais_502_and_the_upstream_one_request(gateway, stream):
    client, upstream = gateway
    before = len(upstream.posts)
    response = client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error" and error["type"] == "upstream_error" and "upstream" in error["message"]
    assert len(upstream.posts) == before + 1


def test_the_gateways_ollama_caller_gets_ollamas_502_and_the_upstream_one_request(gateway):
    client, upstream = gateway
    before = len(upstream.posts)
    response = client.post("/ollama/api/chat", json={**CHAT, "stream": False})
    assert response.status_code == 502
    assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)
    assert len(upstream.posts) == before + 1


# --- a server whose keep-alive close crosses the next request, on raw sockets ---------------------
class ClosingOnReuse:
    """Answers the first request on each connection (echoing its body) and closes the connection, unanswered,
    when the next one arrives: what a server does when its keep-alive timer fires as a request reaches it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, bytes]] = []  # (connection number, method, body) of every request read

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len({number for number, _, _ in self.seen}) + 1
        try:
            for answered in (True, False):
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(content_length(head))
                self.seen.append((connection, head.split(b" ", 1)[0].decode(), body))
                if answered:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body) or 2, body or b"{}"))
                    await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


def crossing(method: str) -> tuple[list[object], list[tuple[int, str, bytes]]]:
    """Two calls of ``method`` through a ``ServiceClient``: what each got (an answer or the error) and what the
    server saw."""
    first, second = {"text": "第一个"}, {"text": "第二个 second"}

    async def two_calls() -> tuple[list[object], list[tuple[int, str, bytes]]]:
        handler = ClosingOnReuse()
        server = await asyncio.start_server(handler.serve, "127.0.0.1", 0)
        client = ServiceClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", name="the test upstream")
        answers: list[object] = []
        async with server:
            try:
                for body in (first, second):
                    call = client.post_json("/", body) if method == "POST" else client.get_json("/")
                    try:
                        answers.append(await call)
                    except UpstreamError as exc:
                        answers.append(exc)
            finally:
                await client.aclose()
        return answers, handler.seen

    return asyncio.run(two_calls())


def test_a_post_the_servers_keep_alive_close_crosses_is_a_502_not_a_second_run():
    answers, seen = crossing("POST")
    assert answers[0] == {"text": "第一个"}
    assert isinstance(answers[1], UpstreamError) and answers[1].status_code == 502
    assert [(number, method) for number, method, _ in seen] == [(1, "POST"), (1, "POST")]  # never on connection 2


def test_a_get_the_servers_keep_alive_close_crosses_goes_once_more_on_a_new_connection():
    answers, seen = crossing("GET")
    assert answers == [{}, {}]
    assert [(number, method) for number, method, _ in seen] == [(1, "GET"), (1, "GET"), (2, "GET")]


def test_a_get_dropped_every_time_is_sent_twice_then_is_a_502():
    """An idempotent request whose connection closed before its answer goes once more, and only once."""
    seen = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        await reader.readuntil(b"\r\n\r\n")
        seen += 1
        writer.close()

    async def get() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        client = ServiceClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", name="x", retries=2)
        client.retry_delay_s = 0.01
        async with server:
            try:
                await client.get_json("/models")
            finally:
                await client.aclose()

    with pytest.raises(UpstreamError, match="RemoteProtocolError"):
        asyncio.run(get())
    assert seen == 2


def test_a_post_to_an_upstream_still_starting_goes_again_once_it_listens():
    """A refused connection carried nothing: the POST goes again after the backoff, and runs once."""
    port = free_port()
    bodies: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        bodies.append(await reader.readexactly(content_length(head)))
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"ok": 1}')
        await writer.drain()
        writer.close()

    async def post_while_it_starts() -> object:
        client = ServiceClient(f"http://127.0.0.1:{port}", name="the test upstream", retries=2)
        client.retry_delay_s = 0.4

        async def start_later() -> asyncio.Server:
            await asyncio.sleep(0.15)
            return await asyncio.start_server(answer, "127.0.0.1", port, family=socket.AF_INET)

        starting = asyncio.create_task(start_later())
        try:
            return await client.post_json("/ingest", {"url": "https://example.org/页面"})
        finally:
            await client.aclose()
            (await starting).close()

    assert asyncio.run(post_while_it_starts()) == {"ok": 1}
    assert [orjson.loads(body) for body in bodies] == [{"url": "https://example.org/页面"}]
