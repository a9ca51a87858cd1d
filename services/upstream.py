"""Calling an HTTP upstream: one way to build its httpx client (on aiohttp's pool, ``AiohttpTransport``),
one way to turn its failures into ours.

``client_options`` is how every service talks to an upstream or a sibling: a Bearer key, timeouts, a
pool whose idle connections close before the server's keep-alive timer fires, and, for an upstream
off this host, the environment's proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) and CA
bundle (``SSL_CERT_FILE``); a ``ca_bundle`` setting trusts a private CA for one upstream.

``map_upstream_errors`` does for httpx what httpx's ``map_httpcore_exceptions`` does for httpcore:
no connection → 502 "unreachable" (``UpstreamUnreachable``: nothing was sent), a timeout → 504,
any other transport failure → 502, each naming the upstream. ``raise_for_upstream_status`` turns
an upstream's error reply into ours. ``never_sent`` is the retry rule (RFC 9110 §9.2.2).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from services.aiohttp_transport import AiohttpTransport
from services.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable, upstream_status_error

# Idle connections close before the server's keep-alive timer (uvicorn's 5 s, and so vLLM's and
# SGLang's) can close them under a request that is on its way.
KEEPALIVE_EXPIRY_S = 4.0


def is_loopback(url: str | httpx.URL) -> bool:
    """Whether ``url`` names this host (``localhost``, 127.0.0.0/8, ::1): a sibling, reached directly."""
    host = httpx.URL(url).host if url else ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_options(
    base_url: str = "",
    *,
    api_key: str | None = None,
    timeout_s: float,
    connect_timeout_s: float = 5.0,
    max_connections: int = 100,
    ca_bundle: str | None = None,
) -> dict[str, Any]:
    """Options for ``httpx.Client`` and ``httpx.AsyncClient`` alike: a Bearer key, ``timeout_s`` for each
    read, at most ``connect_timeout_s`` to connect or to wait for a pooled connection, up to
    ``max_connections`` kept alive; the environment's proxies and CA bundle unless ``base_url`` is on
    this host; ``ca_bundle``, a PEM file, trusted instead of the public roots. No cookie is kept: one
    client serves every caller, and a cookie one answer set would ride on the next caller's request."""
    connect = min(timeout_s, connect_timeout_s)
    trust_env = not is_loopback(base_url)
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {"Authorization": f"Bearer {api_key}"} if api_key else {},
        "timeout": httpx.Timeout(timeout_s, connect=connect, pool=connect),
        "limits": httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        ),
        "trust_env": trust_env,
        "verify": ssl.create_default_context(cafile=ca_bundle)
        if ca_bundle
        else httpx.create_ssl_context(trust_env=trust_env),  # SSL_CERT_FILE or SSL_CERT_DIR, else certifi's roots
        "cookies": CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    }


def upstream_client(
    base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> httpx.AsyncClient:
    """An async client with ``client_options`` on aiohttp's pool (``AiohttpTransport``); ``transport`` lets a
    test put an app in the upstream's place."""
    settings = client_options(base_url, **options)
    return httpx.AsyncClient(transport=transport or aiohttp_transport(settings), **settings)


def aiohttp_transport(settings: dict[str, Any]) -> AiohttpTransport:
    """The transport ``upstream_client`` puts under a client built with ``settings`` (``client_options``)."""
    limits = settings["limits"]
    return AiohttpTransport(
        max_connections=limits.max_connections,
        keepalive_expiry_s=limits.keepalive_expiry,
        ssl_context=settings["verify"],
        trust_env=settings["trust_env"],
    )


def never_sent(error: BaseException | None) -> bool:
    """Whether a request that failed with ``error`` (httpx's) provably never left: no connection was made.
    Only such a request may go again whatever its method; once sent, a POST may be running upstream
    (an idempotent one whose connection closed before the answer is sent once more by aiohttp)."""
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))


@contextmanager
def map_upstream_errors(label: str) -> Iterator[None]:
    """httpx's exceptions raised inside as lingxi's, naming the upstream (``label``, e.g. "llm upstream at …")."""
    try:
        yield
    except httpx.ConnectError as exc:
        if not untrusted_certificate(exc):
            raise unreachable(label, exc) from exc
        raise UpstreamError(
            f"{label} presented a TLS certificate that is not trusted ({untrusted_certificate(exc)}); "
            "if a private CA signed it, set the upstream's CA bundle setting (or SSL_CERT_FILE) to that CA"
        ) from exc
    except httpx.ConnectTimeout as exc:
        raise unreachable(label, exc) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{label} timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{label} failed: {type(exc).__name__}") from exc


def unreachable(label: str, exc: httpx.HTTPError) -> UpstreamUnreachable:
    return UpstreamUnreachable(
        f"could not reach {label}: it is unreachable (refused, or it could not be reached in time; "
        f"{type(exc).__name__})"
    )


def untrusted_certificate(exc: BaseException) -> str | None:
    """Why the TLS handshake refused the server's certificate, if that is what ``exc`` came from."""
    reason = None
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = getattr(cause, "verify_message", None) or reason or str(cause)
        cause = cause.__cause__ or cause.__context__
    return reason


def raise_for_upstream_status(response: httpx.Response, label: str) -> None:
    """An upstream's error reply as ours, with the message from its body: its 4xx passes through (the
    request was at fault), anything else becomes a 502. A streamed response must be read first."""
    if response.status_code >= 400:
        raise upstream_status_error(response.status_code, f"{label}: {error_message(response)}")


def error_message(response: httpx.Response) -> str:
    """The message inside an error body, whatever its shape (OpenAI, FastAPI, Ollama, an envelope's ``msg``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "msg", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:300]
