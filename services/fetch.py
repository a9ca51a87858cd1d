"""The one safe URL fetcher. Every user-supplied URL in lingxi goes through ``SafeFetcher``.

- http and https only;
- every address the host resolves to must be global (IPv4-mapped, 6to4 and Teredo IPv6 unwrapped),
  unless ``host:port`` is in the allowlist (``<SVC>_ALLOWED_HOSTS``);
- the connection goes to the address that was checked (no second DNS lookup to race), with the
  original Host header and TLS server name;
- redirects are followed by hand, each hop checked again;
- the body is capped in bytes and the whole fetch has one deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from services.errors import BadRequest, PayloadTooLarge, Unprocessable, UpstreamError, UpstreamTimeout
from services.upstream import map_upstream_errors

REDIRECT_CODES = {301, 302, 303, 307, 308}
Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchRefused(BadRequest):
    """The URL is not one lingxi will fetch (scheme, private address, malformed)."""


class FetchFailed(Unprocessable):
    """The URL could not be fetched (DNS, connection, timeout, HTTP error status)."""


@dataclass(frozen=True)
class FetchedResource:
    url: str
    status_code: int
    content_type: str  # lower-cased media type without parameters, "" if absent
    charset: str | None
    content: bytes
    headers: httpx.Headers


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"could not resolve host {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def parse_allowlist(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    allowed = set()
    for entry in entries:
        host, sep, port = entry.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"allowed host entry {entry!r} must be host:port")
        allowed.add((host.strip("[]").lower(), int(port)))
    return frozenset(allowed)


class SafeFetcher:
    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        timeout_s: float = 20.0,
        max_bytes: int = 20 * 1024 * 1024,
        max_redirects: int = 5,
        user_agent: str = "lingxi/0.1 (+https://github.com/lingxi)",
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allowed = parse_allowlist(allowed_hosts)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.resolver = resolver
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # never route through an environment proxy: we connect to checked addresses
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={"User-Agent": user_agent},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str) -> FetchedResource:
        try:
            return await asyncio.wait_for(self._fetch(url), timeout=self.timeout_s)
        except asyncio.TimeoutError as exc:
            raise FetchFailed(f"fetching {url} took longer than {self.timeout_s:g} s") from exc
        except (UpstreamError, UpstreamTimeout) as exc:  # a site the caller named failed: the caller's 4xx
            raise FetchFailed(f"could not fetch {url}: {exc.message}") from exc

    async def _fetch(self, url: str) -> FetchedResource:
        current = self._parse(url)
        for _ in range(self.max_redirects + 1):
            address = await self._checked_address(current)
            response = await self._send(current, address)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_CODES and location:
                    current = self._parse(str(current.join(location)))
                    continue
                if response.status_code >= 400:
                    raise FetchFailed(f"{current} answered HTTP {response.status_code}")
                content = await self._read_capped(response, current)
            finally:
                await response.aclose()
            media_type = response.headers.get("content-type", "")
            mime, _, params = media_type.partition(";")
            charset = None
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key.lower() == "charset" and value:
                    charset = value.strip('"').lower()
            return FetchedResource(
                url=str(current),
                status_code=response.status_code,
                content_type=mime.strip().lower(),
                charset=charset,
                content=content,
                headers=response.headers,
            )
        raise FetchFailed(f"more than {self.max_redirects} redirects starting at {url}")

    @staticmethod
    def _parse(url: str) -> httpx.URL:
        if not isinstance(url, str) or not url.strip():
            raise FetchRefused("url is empty")
        try:
            parsed = httpx.URL(url.strip())
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchRefused(f"not a valid URL: {url!r}") from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchRefused(f"only http and https URLs can be fetched, not {parsed.scheme or 'no scheme'!r}")
        if not parsed.host:
            raise FetchRefused(f"the URL {url!r} has no host")
        return parsed

    async def _checked_address(self, url: httpx.URL) -> str:
        host = url.host.lower()
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self.resolver(host, port)
        if not addresses:
            raise FetchFailed(f"could not resolve host {host!r}")
        if (host, port) in self.allowed:
            return addresses[0]
        for address in addresses:
            if not is_public_address(address):
                raise FetchRefused(
                    f"refusing to fetch {host}: it resolves to a non-public address ({address}); "
                    "list it in the service's ALLOWED_HOSTS setting as host:port if it is trusted"
                )
        return addresses[0]

    async def _send(self, url: str | httpx.URL, address: str) -> httpx.Response:
        url = httpx.URL(url)
        host_header = url.netloc.decode("ascii")
        target = url.copy_with(host=address)
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        request = self.client.build_request("GET", target, headers={"Host": host_header}, extensions=extensions)
        with map_upstream_errors(url.host):
            return await self.client.send(request, stream=True)

    async def _read_capped(self, response: httpx.Response, url: httpx.URL) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(f"{url} is {declared} bytes; the limit is {self.max_bytes}")
        body = bytearray()
        with map_upstream_errors(url.host):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise PayloadTooLarge(f"{url} is larger than {self.max_bytes} bytes")
        return bytes(body)
