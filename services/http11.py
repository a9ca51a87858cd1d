"""One keep-alive HTTP/1.1 client connection: an asyncio protocol whose responses httptools parses.

It is what ``services.keepalive`` pools for every upstream. httpcore, httpx's own transport,
spends most of a proxied stream's client-side CPU in h11's pure-Python parser and in anyio's
timeout scope around each read (docs/benchmarks.md); here the request leaves in one write, the
response is parsed in C as it arrives, and a read waits on one future. A call whose answer is
wanted whole (a JSON request) can also skip httpx's ``Request`` and ``Response`` objects: ``exchange``
takes the request's bytes and returns the ``Answer``.

Its failures are httpx's exceptions, so everything above (``services.upstream``) is unchanged.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

import httptools
import httpx

HIGH_WATER = 256 * 1024  # bytes read ahead of the consumer before the socket stops being read


class Answer(NamedTuple):
    """A whole response, as ``Http11Connection.exchange`` reads it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ClosedWithoutAnswer(httpx.RemoteProtocolError):
    """The server closed the connection after the request went out and before a byte of answer came."""


class Http11Connection(asyncio.Protocol):
    """One connection to one origin, one request at a time; ``reusable`` once a response was read whole."""

    def __init__(self, origin: tuple[bytes, bytes, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable = True
        self.active = False  # a request was sent and its response is not yet read whole
        self.broken = False  # no second request may use it
        self.lost: Exception | None = None
        self.idle_since = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)  # new for each response: one to HEAD leaves it mid-body
        self.answered = False  # a byte of the response arrived
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0

    # --- opening and state ---------------------------------------------------------------------
    @classmethod
    async def open(
        cls, url: httpx.URL, *, timeout_s: float | None, ssl_context: ssl.SSLContext | None
    ) -> Http11Connection:
        connection = cls(origin_of(url))
        secure = url.scheme == "https"
        loop = asyncio.get_running_loop()
        try:
            opening = loop.create_connection(
                lambda: connection,
                url.host,
                connection.origin[2],
                ssl=ssl_context if secure else None,
                server_hostname=url.host if secure else None,
            )
            await asyncio.wait_for(opening, timeout_s)
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {url.host}:{connection.origin[2]} in time") from None
        except OSError as exc:  # refused, unreachable, a TLS failure (ssl.SSLError is an OSError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    @property
    def reusable(self) -> bool:
        return not self.broken and self.lost is None and self.transport is not None and not self.transport.is_closing()

    def expired(self, keepalive_expiry_s: float) -> bool:
        return not self.reusable or time.monotonic() - self.idle_since > keepalive_expiry_s

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.close()

    # --- the request -----------------------------------------------------------------------------
    async def send(
        self, request: httpx.Request, timeouts: dict[str, float | None], on_close: Callable[[Http11Connection], None]
    ) -> httpx.Response:
        """Send ``request``, wait for its response's head; ``on_close(self)`` once its body is closed.
        A failure closes the connection: nothing else may be read from it."""
        try:
            return await self._send(request, timeouts, on_close)
        except BaseException:
            self.close()
            raise

    async def _send(
        self, request: httpx.Request, timeouts: dict[str, float | None], on_close: Callable[[Http11Connection], None]
    ) -> httpx.Response:
        self.active = True
        self._reset()
        url = request.url
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [name + b": " + value + b"\r\n" for name, value in request.headers.raw]
        head.append(b"\r\n")
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = None
        if body is not None and not chunked:
            self._write(b"".join(head) + body)
        else:
            self._write(b"".join(head))
            async for part in request.stream:  # type: ignore[union-attr]
                if part:
                    await self._drain(timeouts.get("write"))
                    self._write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                self._write(b"0\r\n\r\n")
        await self._drain(timeouts.get("write"))
        read_timeout = timeouts.get("read")
        await self._response_head(read_timeout)
        if request.method == "HEAD":
            self.complete = True  # httptools would wait for the Content-Length's worth of body
        return httpx.Response(
            self.status,
            headers=self.headers,
            stream=ResponseBody(self, read_timeout, on_close),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def exchange(
        self, data: bytes, timeouts: dict[str, float | None], on_close: Callable[[Http11Connection], None]
    ) -> Answer:
        """Send ``data``, a whole request (not HEAD), and read its whole response; ``on_close(self)`` after.
        A failure closes the connection, as ``send``'s does."""
        try:
            self.active = True
            self._reset()
            self._write(data)
            await self._drain(timeouts.get("write"))
            read_timeout = timeouts.get("read")
            await self._response_head(read_timeout)
            body = []
            while part := await self.read(read_timeout):
                body.append(part)
        except BaseException:
            self.close()
            raise
        self.finish(on_close)
        return Answer(self.status, self.headers, b"".join(body))

    async def _response_head(self, read_timeout_s: float | None) -> None:
        while not self.headers_done:
            self._raise_if_lost(before_response=True)
            await self._wait(read_timeout_s)

    def finish(self, on_close: Callable[[Http11Connection], None]) -> None:
        """The exchange is over: the connection is idle again, or closed if its response was not read whole."""
        self.active = False
        if not self.complete or self.chunks:
            self.close()  # the rest of the body would arrive on a connection the next request reads
        self.idle_since = time.monotonic()
        on_close(self)

    async def read(self, timeout_s: float | None) -> bytes:
        """What arrived of the body since the last read, waiting up to ``timeout_s`` for it; b"" at its end."""
        while not self.chunks:
            if self.complete:
                return b""
            self._raise_if_lost()
            await self._wait(timeout_s)
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.transport is not None and not self.broken:
            self.transport.resume_reading()
        return data

    def _write(self, data: bytes) -> None:
        if self.lost is not None or self.transport is None:
            raise httpx.WriteError("the upstream closed the connection") from self.lost
        self.transport.write(data)

    async def _drain(self, timeout_s: float | None) -> None:
        while not self.writable:
            if self.lost is not None:
                raise httpx.WriteError("the upstream closed the connection") from self.lost
            try:
                await self._wait(timeout_s)
            except httpx.ReadTimeout:
                raise httpx.WriteTimeout("the upstream took no more of the request in time") from None

    async def _wait(self, timeout_s: float | None) -> None:
        """Until the socket brings data, its end or room to write; ``httpx.ReadTimeout`` after ``timeout_s``."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.waiter, timeout_s)
        except asyncio.TimeoutError:
            self.close()
            raise httpx.ReadTimeout(f"the upstream sent nothing for {timeout_s} s") from None
        finally:
            self.waiter = None

    def _raise_if_lost(self, *, before_response: bool = False) -> None:
        if self.lost is None:
            return
        if isinstance(self.lost, httptools.HttpParserError):
            raise httpx.RemoteProtocolError(f"the upstream sent malformed HTTP: {self.lost}") from self.lost
        if not self.answered:
            raise ClosedWithoutAnswer("the upstream closed the connection without a response") from self.lost
        if before_response:
            raise httpx.RemoteProtocolError(
                "the upstream closed the connection without a whole response head"
            ) from self.lost
        raise httpx.RemoteProtocolError("the upstream closed the connection before the body's end") from self.lost

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # --- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active:  # the server spoke (or closed) between requests: do not reuse
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.lost = httptools.HttpParserError("the upstream switched protocols")
            self.close()
        except httptools.HttpParserError as exc:
            self.lost = exc
            self.close()
        if self.buffered > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        if self.lost is None and self.headers_done and not self.complete and not self._framed():
            self.complete = True  # no Content-Length and not chunked: the body ends with the connection
        self.lost = self.lost or exc or ConnectionResetError("connection closed")
        self._wake()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._wake()

    def _framed(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    # --- httptools' callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (103 Early Hints): the real one follows
            self.headers = []
            return
        self.status = status
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            if not self.parser.should_keep_alive():
                self.broken = True


def origin_of(url: httpx.URL) -> tuple[bytes, bytes, int]:
    return url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80)


class ResponseBody(httpx.AsyncByteStream):
    """A response's body as it arrives; closing it ends the exchange (a connection read whole stays open)."""

    def __init__(
        self,
        connection: Http11Connection,
        read_timeout_s: float | None,
        on_close: Callable[[Http11Connection], None],
    ) -> None:
        self.connection = connection
        self.read_timeout_s = read_timeout_s
        self.on_close = on_close
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while data := await self.connection.read(self.read_timeout_s):
            yield data

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.connection.finish(self.on_close)
