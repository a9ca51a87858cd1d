"""The connection pool of lingxi's async upstream clients: idle keep-alive connections are reused last
in, first out, and at most ``max_connections`` requests are in flight at once.

httpx's own pool (httpcore 1.0) walks every connection it holds on each request and on each
response's end, probing each idle socket, work that grows with the square of the connections: at
64 concurrent streams it was a quarter of the llm gateway's CPU (docs/benchmarks.md). Here a
request takes the most recently idled connection and probes only that one. HTTP itself (h11, TLS,
the keep-alive expiry) stays httpcore's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio
import httpcore
import httpx

# httpcore's errors as httpx's, the most specific first (as httpx's own transport maps them)
ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for raised, mapped in ERRORS:
            if isinstance(exc, raised):
                raise mapped(str(exc)) from exc
        raise


class KeepAliveTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, keepalive_expiry_s: float = 5.0) -> None:
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}  # by origin
        self.keepalive_expiry_s = keepalive_expiry_s
        self.ssl_context = httpx.create_ssl_context(trust_env=False)
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        sent = httpcore.Request(
            request.method, target, headers=request.headers.raw, content=request.stream, extensions=request.extensions
        )
        with httpx_errors():
            await self._take_slot(request.extensions.get("timeout", {}).get("pool"))
            try:
                connection, response = await self._send(sent)
            except BaseException:
                self.slots.release()
                raise
        origin = key(sent.url.origin)

        async def release() -> None:
            self.slots.release()
            if connection.is_idle() and not self.closed:
                self.idle.setdefault(origin, []).append(connection)
            else:
                await connection.aclose()

        body = ResponseStream(response.stream, release)  # type: ignore[arg-type]
        return httpx.Response(response.status, headers=response.headers, stream=body, extensions=response.extensions)

    async def _take_slot(self, timeout_s: float | None) -> None:
        if not self.slots.locked():
            await self.slots.acquire()  # free: returns at once
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout_s)
        except asyncio.TimeoutError:
            raise httpcore.PoolTimeout("no connection to the upstream came free in time") from None

    async def _send(self, request: httpcore.Request) -> tuple[httpcore.AsyncHTTPConnection, httpcore.Response]:
        idle = self.idle.get(key(request.url.origin), [])
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                try:
                    return connection, await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    pass
            await connection.aclose()
        connection = httpcore.AsyncHTTPConnection(
            request.url.origin, ssl_context=self.ssl_context, keepalive_expiry=self.keepalive_expiry_s
        )
        return connection, await connection.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True
        connections = [connection for idle in self.idle.values() for connection in idle]
        self.idle.clear()
        for connection in connections:
            await connection.aclose()


def key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class ResponseStream(httpx.AsyncByteStream):
    """A response's body; closing it gives its connection back (once)."""

    def __init__(self, stream: AsyncIterator[bytes], release: Callable[[], Awaitable[None]]) -> None:
        self.stream = stream
        self.release = release
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self.stream:
                yield part

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):  # as httpcore's pool: a cancelled request still gives its connection back
            try:
                with httpx_errors():
                    await self.stream.aclose()  # type: ignore[attr-defined]
            finally:
                await self.release()
