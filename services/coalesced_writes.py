"""HTTP responses that reach the socket in one write, so the client wakes once per response.

uvloop writes to the socket at once on every ``transport.write``, and uvicorn writes a response's
head and its body separately: two sends, and on a busy machine the client, woken by the head, runs
(often on this very core) before the body follows. ``CoalescingHttpProtocol`` is uvicorn's own
HTTP protocol whose writes in one turn of the event loop are joined and sent together at its end
(at once from ``FLUSH_AT`` bytes on, so a large body still meets the socket's flow control), and at
once when a response is complete: what the app does after its last byte (the middleware's metrics and
log line, the task's end) no longer delays the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """``transport``, its writes of one event-loop turn sent as one; everything else passes through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= FLUSH_AT:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_size

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._pending_size = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalescing_http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (httptools where installed, else h11) on a ``CoalescingTransport``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class CoalescingHttpProtocol(Base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.transport = cast(asyncio.Transport, CoalescingTransport(transport, self.loop))

        def on_response_complete(self) -> None:
            cast(CoalescingTransport, self.transport).flush()
            super().on_response_complete()

    return CoalescingHttpProtocol
