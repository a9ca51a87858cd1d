"""Servers on raw sockets for the upstream client's tests: what a broken upstream sends (``raw_server``,
``HangingUpOnPosts``), and a small HTTP proxy (absolute-form requests and ``CONNECT`` tunnels) that
reaches names under ``.test`` on 127.0.0.1, names that nothing else on this machine resolves."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handle: Handler) -> tuple[asyncio.Server, str]:
    """A server on 127.0.0.1 that reads each connection's first request head, then hands it to ``handle``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def content_length(head: bytes) -> int:
    lines = head.lower().split(b"\r\n")
    return next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")), 0)


class Proxy:
    """An HTTP proxy on 127.0.0.1; ``seen`` holds the request line of everything it was asked to carry."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    @staticmethod
    def address(authority: str) -> tuple[str, int]:
        host, _, port = authority.rpartition(":")
        if not host.endswith(".test"):
            raise ValueError(f"this proxy reaches only .test names, not {host}")
        return "127.0.0.1", int(port)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                upstream = await asyncio.open_connection(*self.address(target))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await self.pipe((reader, writer), upstream)
                return
            # absolute form: "GET http://upstream.test:PORT/path HTTP/1.1" goes on in origin form
            authority, _, path = target.removeprefix("http://").partition("/")
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.address(authority))
            first, rest = head.split(b"\r\n", 1)
            upstream_writer.write(first.replace(target.encode(), b"/" + path.encode()) + b"\r\n" + rest)
            upstream_writer.write(await reader.readexactly(content_length(head)))
            await self.pipe((reader, writer), (upstream_reader, upstream_writer))
        except (ValueError, OSError, asyncio.IncompleteReadError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            writer.close()

    @staticmethod
    async def pipe(
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(client[0], upstream[1]), copy(upstream[0], client[1]))


class HangingUpOnPosts:
    """A threaded upstream on 127.0.0.1 that answers ``GET`` with ``get_answer`` (JSON) and reads every
    POST whole, then closes the connection without a byte of answer: what a server that crashes on a
    request, or a load balancer that drops it, does. ``posts`` holds the body of every POST it read."""

    def __init__(self, get_answer: bytes = b'{"object": "list", "data": []}') -> None:
        self.get_answer = get_answer
        self.posts: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self.accept, daemon=True)

    def __enter__(self) -> HangingUpOnPosts:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.listener.close()

    def accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            while head := read_head(reader):
                if not head.startswith(b"POST"):
                    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    connection.sendall(answer % (len(self.get_answer), self.get_answer))
                    continue
                self.posts.append(reader.read(content_length(head)))
                return  # closes the connection, unanswered


def read_head(reader: Any) -> bytes:
    lines = []
    while (line := reader.readline()) not in (b"\r\n", b""):
        lines.append(line)
    return b"".join(lines)
