"""httpx's async transport on aiohttp's client: callers keep httpx's API (requests, streamed responses,
timeouts, exceptions) while aiohttp's connection pool and C HTTP parser carry the bytes.

aiohttp reads ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` itself when ``trust_env`` (tunnelling HTTPS
with ``CONNECT``), keeps no cookies here, and sends a request again on its own only where RFC 9110
allows it: an idempotent one whose reused connection closed before the answer. Its exceptions become
the httpx ones the rest of lingxi maps (``services.upstream.map_upstream_errors``): a connection that
could not be made is ``httpx.ConnectError`` or ``ConnectTimeout`` (nothing was sent), anything after
that is another ``httpx.TransportError``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from yarl import URL

# Most specific first: the first class an aiohttp exception is an instance of gives the httpx class.
ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # no connection in time (or no pool slot)
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),  # the proxy refused the tunnel
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unresolvable, TLS or proxy connect failure
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # closed without (all of) an answer
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # a body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not HTTP
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),  # reset while sending or reading
    (aiohttp.ClientError, httpx.TransportError),
)


@contextmanager
def httpx_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        kind = next(kind for source, kind in ERRORS if isinstance(exc, source))
        raise kind(str(exc) or type(exc).__name__) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (made on first use, in the running event loop) for one httpx client."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float,
        ssl_context: ssl.SSLContext,
        trust_env: bool = False,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry_s = keepalive_expiry_s
        self.ssl_context = ssl_context
        self.trust_env = trust_env
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.keepalive_expiry_s,
                ssl=self.ssl_context,
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                trust_env=self.trust_env,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # httpx's Response decodes the body, as it asked for it
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self.session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        connect = timeout.get("connect")
        pool = timeout.get("pool")
        try:
            body: bytes | AsyncIterator[bytes] | None = request.content or None
        except httpx.RequestNotRead:
            body = parts(request)
        with httpx_errors():
            response = await self._session().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers(request.headers),
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=None if connect is None or pool is None else connect + pool,
                    sock_connect=connect,
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=ResponseBody(response),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def headers(request_headers: httpx.Headers) -> list[tuple[str, str]]:
    """The request's headers as aiohttp takes them, less the one it writes itself from the body it is given."""
    encoding = request_headers.encoding
    return [
        (name.decode(encoding), value.decode(encoding))
        for name, value in request_headers.raw
        if name.lower() != b"transfer-encoding"
    ]


async def parts(request: httpx.Request) -> AsyncIterator[bytes]:
    async for part in request.stream:  # type: ignore[union-attr]
        if part:
            yield part


class ResponseBody(httpx.AsyncByteStream):
    """A response's body as it arrives; closing it gives the connection back (closed if the body was not read
    to its end)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for data in self.response.content.iter_any():
                yield data

    async def aclose(self) -> None:
        if self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()  # the rest of the body would arrive on a connection the next request reads
