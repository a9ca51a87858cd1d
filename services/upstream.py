"""Calling an HTTP upstream: one way to build the client, one way to turn its failures into ours.

``map_upstream_errors`` does for httpx what httpx's ``map_httpcore_exceptions`` does for httpcore:
no connection → 502 "unreachable" (``UpstreamUnreachable``: nothing was sent), a timeout → 504,
any other transport failure → 502, each naming the upstream. ``raise_for_upstream_status`` turns
an upstream's error reply into ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from services.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable, upstream_status_error
from services.keepalive import KeepAliveTransport


def client_options(
    base_url: str = "",
    *,
    api_key: str | None = None,
    timeout_s: float,
    connect_timeout_s: float = 5.0,
    max_connections: int = 100,
) -> dict[str, Any]:
    """How lingxi talks to every upstream, for ``httpx.Client`` and ``httpx.AsyncClient`` alike: a Bearer
    key, ``timeout_s`` for each read, at most ``connect_timeout_s`` to connect or to wait for a pooled
    connection, every connection kept alive, and never an environment proxy."""
    connect = min(timeout_s, connect_timeout_s)
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {"Authorization": f"Bearer {api_key}"} if api_key else {},
        "timeout": httpx.Timeout(timeout_s, connect=connect, pool=connect),
        "limits": httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        "trust_env": False,
    }


def upstream_client(
    base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> httpx.AsyncClient:
    """An async client with ``client_options`` on lingxi's ``KeepAliveTransport``; ``transport`` lets a test
    put an app in the upstream's place."""
    settings = client_options(base_url, **options)
    transport = transport or KeepAliveTransport(max_connections=settings["limits"].max_connections)
    return httpx.AsyncClient(transport=transport, **settings)


@contextmanager
def map_upstream_errors(label: str) -> Iterator[None]:
    """httpx's exceptions raised inside as lingxi's, naming the upstream (``label``, e.g. "llm upstream at …")."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise UpstreamUnreachable(
            f"could not reach {label}: it is unreachable (refused, or it could not be reached in time; "
            f"{type(exc).__name__})"
        ) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{label} timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{label} failed: {type(exc).__name__}") from exc


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
