"""lingxi's upstream HTTP/1.1 client (services/http11.py under services/keepalive.py), against real servers:
uvicorn for what a well-behaved upstream sends, raw sockets for what a broken one does. Each failure
must reach the caller as lingxi's 502/504, never hang, never leave a connection that a later request
would read a stale answer from."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import math
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from services.clients import ServiceClient
from services.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from services.keepalive import KeepAliveTransport
from services.upstream import map_upstream_errors, upstream_client
from tests.conftest import free_port, serve_app

CHINESE = "上海的天气怎么样？请用中文回答。"
BIG_JSON = {"rows": [f"{i} {CHINESE}" for i in range(30000)]}  # 1.5 MB: past the connection's read-ahead


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


def test_a_body_larger_than_the_read_ahead_arrives_whole(upstream):
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


def test_a_json_answer_larger_than_the_read_ahead_or_chunked_arrives_whole(upstream):
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


def test_a_json_answer_compressed_though_not_asked_to_be_is_read():
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
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handle: Handler) -> tuple[asyncio.Server, str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            await handle(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture(params=["send", "exchange"])
def way(request) -> str:
    """Each broken upstream is met by both ways of a request: httpx's ``Response`` (``send``, as streams
    go) and a whole answer as bytes (``exchange``, as JSON calls go)."""
    return request.param


async def fetch(url: str, timeout_s: float = 5, way: str = "send") -> bytes:
    async with upstream_client(url, timeout_s=timeout_s) as http:
        with map_upstream_errors("the test upstream"):
            if way == "send":
                return (await http.get("/")).content
            transport = http._transport
            assert isinstance(transport, KeepAliveTransport)
            request = f"GET / HTTP/1.1\r\nHost: {httpx.URL(url).netloc.decode()}\r\n\r\n".encode()
            answer = await transport.exchange(httpx.URL(url), request, httpx.Timeout(timeout_s).as_dict())
            return answer.body


def against(handle: Handler, way: str, timeout_s: float = 5) -> bytes:
    async def go() -> bytes:
        server, url = await raw_server(handle)
        async with server:
            return await fetch(url, timeout_s, way)

    return asyncio.run(go())


def test_a_body_cut_short_is_a_502_not_a_truncated_answer(way):
    async def cut(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"partial": "')
        await writer.drain()

    with pytest.raises(UpstreamError, match="the test upstream failed: RemoteProtocolError"):
        against(cut, way)


def test_an_answer_that_is_not_http_is_a_502(way):
    async def garbage(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    with pytest.raises(UpstreamError, match="RemoteProtocolError"):
        against(garbage, way)


def test_closing_without_an_answer_is_a_502(way):
    async def hang_up(reader, writer):
        pass

    with pytest.raises(UpstreamError, match="the test upstream failed: ClosedWithoutAnswer"):
        against(hang_up, way)


def test_an_upstream_that_never_answers_is_a_504_after_the_read_timeout(way):
    async def silent(reader, writer):
        await asyncio.sleep(10)

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="timed out"):
        against(silent, way, timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_a_body_that_ends_with_the_connection_is_read_to_its_end(way):
    async def http10(reader, writer):
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        writer.write(CHINESE.encode() * 3)
        await writer.drain()

    assert against(http10, way).decode() == CHINESE * 3


def test_a_refused_connection_is_unreachable(way):
    with pytest.raises(UpstreamUnreachable, match="could not reach the test upstream"):
        asyncio.run(fetch(f"http://127.0.0.1:{free_port()}", way=way))


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


# --- https ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(folder / "key.pem"), str(folder / "cert.pem")


def test_https_upstreams_are_spoken_to_over_verified_tls(tls_files):
    keyfile, certfile = tls_files

    async def over_tls(url: str, context: ssl.SSLContext | None) -> dict:
        transport = KeepAliveTransport(max_connections=2, ssl_context=context)
        async with httpx.AsyncClient(transport=transport, base_url=url) as http:
            return (await http.post("/echo", content=CHINESE.encode())).json()

    with serve_app(echo_app(), ssl_keyfile=keyfile, ssl_certfile=certfile) as url:
        url = url.replace("http://", "https://")
        trusting = ssl.create_default_context(cafile=certfile)
        assert asyncio.run(over_tls(url, trusting))["text"] == CHINESE
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(over_tls(url, None))  # the default trusts public roots only, not this self-signed one
