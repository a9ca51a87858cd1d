import asyncio
import time

import pytest

from services.errors import PayloadTooLarge
from services.fetch import FetchFailed, FetchRefused, SafeFetcher, is_public_address, parse_allowlist
from tests.conftest import reply


def fetch(url: str, **kwargs):
    async def go():
        fetcher = SafeFetcher(**kwargs)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def resolving_to(*addresses: str):
    async def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fc00::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::", False),  # 6to4 wrapping 10.0.0.1
    ],
)
def test_public_address_check(address, public):
    assert is_public_address(address) is public


def test_fetcher_refuses_loopback_by_default(local_server):
    local_server.routes["/"] = reply(200, b"secret")
    with pytest.raises(FetchRefused, match="non-public address"):
        fetch(local_server.url())
    assert local_server.seen_hosts == []


def test_fetcher_refuses_ipv4_mapped_loopback(local_server):
    local_server.routes["/"] = reply(200, b"secret")
    with pytest.raises(FetchRefused, match="non-public"):
        fetch(f"http://[::ffff:127.0.0.1]:{local_server.port}/")


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.0.10", "169.254.169.254", "fd12::1", "::1"])
def test_fetcher_refuses_names_resolving_to_private_addresses(address):
    with pytest.raises(FetchRefused, match=address):
        fetch("http://intranet.example.test/", resolver=resolving_to(address))


def test_fetcher_refuses_when_any_resolved_address_is_private():
    with pytest.raises(FetchRefused, match="10.0.0.1"):
        fetch("http://mixed.example.test/", resolver=resolving_to("93.184.216.34", "10.0.0.1"))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "not a url", "", "http://"]
)
def test_fetcher_refuses_bad_urls(url):
    with pytest.raises(FetchRefused):
        fetch(url)


def test_fetcher_fetches_allowlisted_host(local_server):
    local_server.routes["/page"] = reply(200, "你好".encode(), "text/html; charset=UTF-8")
    result = fetch(local_server.url("/page"), allowed_hosts=[local_server.netloc])
    assert result.content.decode() == "你好"
    assert result.content_type == "text/html"
    assert result.charset == "utf-8"


def test_allowlist_is_per_port(local_server):
    local_server.routes["/"] = reply(200, b"ok")
    with pytest.raises(FetchRefused):
        fetch(local_server.url(), allowed_hosts=[f"127.0.0.1:{local_server.port + 1}"])


def test_allowlist_entries_must_name_a_port():
    with pytest.raises(ValueError):
        parse_allowlist(["localhost"])


def test_fetcher_connects_to_the_checked_address_with_the_original_host(local_server):
    local_server.routes["/"] = reply(200, b"hello")
    host = "docs.example.test"
    result = fetch(
        f"http://{host}:{local_server.port}/",
        allowed_hosts=[f"{host}:{local_server.port}"],
        resolver=resolving_to("127.0.0.1"),
    )
    assert result.content == b"hello"
    assert local_server.seen_hosts == [f"{host}:{local_server.port}"]


def test_fetcher_rechecks_every_redirect_hop(local_server):
    local_server.routes["/to-private"] = reply(302, headers={"Location": "http://10.0.0.1/admin"})
    local_server.routes["/to-other-port"] = reply(
        301, headers={"Location": f"http://127.0.0.1:{local_server.port + 1}/"}
    )
    allowed = [local_server.netloc]
    with pytest.raises(FetchRefused, match="10.0.0.1"):
        fetch(local_server.url("/to-private"), allowed_hosts=allowed)
    with pytest.raises(FetchRefused):
        fetch(local_server.url("/to-other-port"), allowed_hosts=allowed)


def test_fetcher_follows_allowed_redirects(local_server):
    local_server.routes["/old"] = reply(301, headers={"Location": "/new"})
    local_server.routes["/new"] = reply(200, b"moved here", "text/plain")
    result = fetch(local_server.url("/old"), allowed_hosts=[local_server.netloc])
    assert result.content == b"moved here"
    assert result.url.endswith("/new")


def test_fetcher_stops_redirect_loops(local_server):
    local_server.routes["/loop"] = reply(302, headers={"Location": "/loop"})
    with pytest.raises(FetchFailed, match="redirects"):
        fetch(local_server.url("/loop"), allowed_hosts=[local_server.netloc], max_redirects=3)


def test_fetcher_caps_the_body(local_server):
    local_server.routes["/big"] = reply(200, b"x" * 5000)

    def chunked(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.end_headers()
        for _ in range(10):
            handler.wfile.write(b"y" * 1000)

    local_server.routes["/chunked"] = chunked
    with pytest.raises(PayloadTooLarge):
        fetch(local_server.url("/big"), allowed_hosts=[local_server.netloc], max_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        fetch(local_server.url("/chunked"), allowed_hosts=[local_server.netloc], max_bytes=1000)


def test_fetcher_has_a_deadline(local_server):
    def slow(handler):
        time.sleep(3)
        reply(200, b"late")(handler)

    local_server.routes["/slow"] = slow
    started = time.monotonic()
    with pytest.raises(FetchFailed):
        fetch(local_server.url("/slow"), allowed_hosts=[local_server.netloc], timeout_s=0.5)
    assert time.monotonic() - started < 2.5


def test_fetcher_reports_error_statuses_and_dead_hosts(local_server):
    with pytest.raises(FetchFailed, match="404"):
        fetch(local_server.url("/missing"), allowed_hosts=[local_server.netloc])
    with pytest.raises(FetchFailed):
        fetch("http://127.0.0.1:9/", allowed_hosts=["127.0.0.1:9"])
