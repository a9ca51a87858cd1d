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

import httpx

from services.http11 import ClosedWithoutAnswer, Http11Connection, origin_of


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
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"upstreams speak http or https, not {request.url.scheme!r}")
        timeouts = request.extensions.get("timeout", {})
        await self._take_slot(timeouts.get("pool"))
        try:
            return await self._send(request, timeouts)
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

    async def _send(self, request: httpx.Request, timeouts: dict) -> httpx.Response:
        url = request.url
        idle = self.idle.get(origin_of(url), [])
        while idle:
            connection = idle.pop()
            if connection.expired(self.keepalive_expiry_s):
                connection.close()
                continue
            try:
                return await connection.send(request, timeouts, self._give_back)
            except ClosedWithoutAnswer:
                if not can_send_again(request):
                    raise
                break  # closed as the request reached it: once more, on a new connection
        connection = await Http11Connection.open(url, timeout_s=timeouts.get("connect"), ssl_context=self.ssl_context)
        return await connection.send(request, timeouts, self._give_back)

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
