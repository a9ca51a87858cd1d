"""The connection pool of lingxi's async upstream clients: idle keep-alive connections are reused last
in, first out, and at most ``max_connections`` requests are in flight at once.

httpx's own pool (httpcore 1.0) walks every connection it holds on each request and on each
response's end, probing each idle socket, work that grows with the square of the connections: at
64 concurrent streams it was a quarter of the llm gateway's CPU (docs/benchmarks.md). Here a
request takes the most recently idled connection, and a connection learns that its server closed
it from the event loop (``services.http11``), so nothing is probed.

A server closes a connection left idle for its keep-alive timeout (uvicorn's, and so vLLM's and
SGLang's, is 5 s; llama.cpp's too). Idle connections are dropped a second before that. Should one be
closed as a request reaches it anyway (a server with a shorter timeout, or a busy one: the close and
the request cross), the request goes once more, on a new connection, if not a byte of answer came
back and its body is in memory. A new connection closed that way is an error: a server that crashes
on a request gets it at most twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from services.http11 import Answer, ClosedWithoutAnswer, Http11Connection, origin_of

T = TypeVar("T")


class KeepAliveTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, max_connections: int, keepalive_expiry_s: float = 4.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: dict[tuple[bytes, bytes, int], list[Http11Connection]] = {}  # by origin
        self.keepalive_expiry_s = keepalive_expiry_s
        self.ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)  # certifi's roots
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})

        async def send(connection: Http11Connection) -> httpx.Response:
            return await connection.send(request, timeouts, self._give_back)

        return await self._on_a_connection(request.url, timeouts, send, resendable=can_send_again(request))

    async def exchange(self, url: httpx.URL, data: bytes, timeouts: dict[str, float | None]) -> Answer:
        """``data``, a whole request for ``url``'s origin, sent; its whole response read."""

        async def exchange(connection: Http11Connection) -> Answer:
            return await connection.exchange(data, timeouts, self._give_back)

        return await self._on_a_connection(url, timeouts, exchange, resendable=True)

    async def _on_a_connection(
        self,
        url: httpx.URL,
        timeouts: dict[str, float | None],
        use: Callable[[Http11Connection], Awaitable[T]],
        *,
        resendable: bool,
    ) -> T:
        """``use`` on the most recently idled connection to ``url``'s origin, or on a new one; once more on
        a new one if a reused one closed before a byte of answer and the request can be sent again. The
        slot taken here goes back when ``use``'s exchange ends (``_give_back``) or fails."""
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"upstreams speak http or https, not {url.scheme!r}")
        await self._take_slot(timeouts.get("pool"))
        try:
            idle = self.idle.get(origin_of(url), [])
            while idle:
                connection = idle.pop()
                if connection.expired(self.keepalive_expiry_s):
                    connection.close()
                    continue
                try:
                    return await use(connection)
                except ClosedWithoutAnswer:
                    if not resendable:
                        raise
                    break  # closed as the request reached it: once more, on a new connection
            opened = await Http11Connection.open(url, timeout_s=timeouts.get("connect"), ssl_context=self.ssl_context)
            return await use(opened)
        except BaseException:
            self.slots.release()
            raise

    async def _take_slot(self, timeout_s: float | None) -> None:
        if not self.slots.locked():
            await self.slots.acquire()  # free: returns at once
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout_s)
        except asyncio.TimeoutError:
            raise httpx.PoolTimeout("no connection to the upstream came free in time") from None

    def _give_back(self, connection: Http11Connection) -> None:
        self.slots.release()
        if connection.reusable and not self.closed:
            self.idle.setdefault(connection.origin, []).append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        self.closed = True
        for idle in self.idle.values():
            for connection in idle:
                connection.close()
        self.idle.clear()


def can_send_again(request: httpx.Request) -> bool:
    """Whether ``request``'s body is bytes held in memory (a streamed body is gone once sent)."""
    try:
        return isinstance(request.content, bytes)
    except httpx.RequestNotRead:
        return False
