"""``create_app``: the FastAPI base every FastAPI service builds on.

It adds, as one pure-ASGI middleware (cheap on the hot path, safe with streaming): request ids,
the access log, Prometheus metrics, optional Bearer auth, a request-size cap and an overall
concurrency bound; then the error handlers and ``/health``, ``/livez``, ``/metrics``. Routes reach
what the service keeps on ``app.state`` through ``app_state`` dependencies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.auth import PUBLIC_PATHS, is_authorized
from services.errors import LingxiError, PayloadTooLarge, error_body
from services.health import Health, HealthCheck, evaluate
from services.metrics import CONTENT_TYPE_LATEST, Metrics
from services.settings import ServiceSettings

access_log = logging.getLogger("lingxi.access")
log = logging.getLogger("lingxi")

UNLIMITED_PATHS = PUBLIC_PATHS | {"/metrics"}
KEY_SUBPROTOCOL = "openai-insecure-api-key."  # WebSocket key from a browser, as OpenAI's Realtime API takes it
ErrorRenderer = Callable[[int, str, str], dict[str, Any]]
HealthRenderer = Callable[[Health], dict[str, Any]]


class CappedBody:
    """``receive``, raising ``PayloadTooLarge`` once the body passes ``limit`` bytes, and remembering it."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded: PayloadTooLarge | None = None

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = PayloadTooLarge(f"request body is larger than {self.limit} bytes")
                raise self.exceeded
        return message


class KernelMiddleware:
    def __init__(self, app: ASGIApp, settings: ServiceSettings, metrics: Metrics, render: ErrorRenderer) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.render = render
        self.slots = asyncio.Semaphore(settings.max_concurrency)
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and not self._authorized(scope):
                await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
                return
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0  # 0 until the response starts
        body = CappedBody(receive, self.settings.max_request_bytes)
        replaced = False  # the app's answer to a body over the cap, sent as the kernel's 413 instead

        async def send_with_id(message: Message) -> None:
            nonlocal status, replaced
            if message["type"] != "http.response.start":
                if not replaced:
                    await send(message)
                return
            rest = None
            if body.exceeded and message["status"] != 413:  # the route took the cap's error for a bad body
                replaced = True
                message, rest = self._rejection(413, body.exceeded.message, "payload_too_large")
            status = message["status"]
            message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)
            if rest is not None:
                await send(rest)

        self.metrics.in_flight_here.inc()
        try:
            await self._handle(scope, body.receive, send_with_id, headers)
        except Exception:  # the last resort: log the trace, answer a generic 500 if nothing was sent yet
            log.exception("unhandled error in %s %s (request id %s)", scope["method"], scope["path"], request_id)
            if status == 0:
                message = f"internal server error (request id {request_id})"
                await self._reject(send_with_id, 500, message, "internal_error")
        finally:
            self.metrics.in_flight_here.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status or 500, elapsed)
            access_log.info(
                "%s %s %s %.1fms rid=%s", scope["method"], scope["path"], status, elapsed * 1000, request_id
            )

    def _authorized(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        if authorization is None and scope["type"] == "websocket":  # a browser's key: OpenAI's subprotocol
            offered = headers.get(b"sec-websocket-protocol", b"").decode("latin-1").split(",")
            keys = [p.strip().removeprefix(KEY_SUBPROTOCOL) for p in offered if p.strip().startswith(KEY_SUBPROTOCOL)]
            authorization = f"Bearer {keys[0]}" if keys else None
        return is_authorized(self.settings.api_key, scope["path"], authorization)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        if not self._authorized(scope):
            await self._reject(
                send,
                401,
                "missing or invalid API key (send 'Authorization: Bearer <key>')",
                "authentication_error",
                {"www-authenticate": "Bearer"},
            )
            return
        limit = self.settings.max_request_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._reject(send, 413, f"request body is larger than {limit} bytes", "payload_too_large")
            return
        if scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.slots.locked() and self.waiting >= self.settings.max_queue:
            await self._reject(send, 429, "server is busy, retry shortly", "rate_limit_error", {"retry-after": "1"})
            return
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _reject(
        self, send: Send, status: int, message: str, error_type: str, extra_headers: dict[str, str] | None = None
    ) -> None:
        for part in self._rejection(status, message, error_type, extra_headers):
            await send(part)

    def _rejection(
        self, status: int, message: str, error_type: str, extra_headers: dict[str, str] | None = None
    ) -> tuple[Message, Message]:
        """The ASGI messages of the kernel's own error answer."""
        body = json.dumps(self.render(status, message, error_type)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in (extra_headers or {}).items()]
        start = {"type": "http.response.start", "status": status, "headers": headers}
        return start, {"type": "http.response.body", "body": body}


def describe_validation_error(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for err in errors[:5]:
        path = list(err.get("loc", ()))
        if path and path[0] in ("body", "query", "path", "form", "header", "cookie"):
            path = path[1:]  # the location, not a field (a field may well be called "query")
        loc = ".".join(str(p) for p in path)
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return 422, "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, render: ErrorRenderer) -> None:
    def respond(status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(render(status, message, error_type), status_code=status, headers=headers)

    @app.exception_handler(LingxiError)
    async def lingxi_error(request: Request, exc: LingxiError) -> JSONResponse:
        return respond(exc.status_code, exc.message, exc.error_type, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = describe_validation_error(exc)
        return respond(status, message, "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return respond(exc.status_code, message, "invalid_request_error", getattr(exc, "headers", None))


def create_app(
    settings: ServiceSettings,
    *,
    name: str,
    health: HealthCheck,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    render_error: ErrorRenderer = error_body,
    render_health: HealthRenderer = Health.body,
    version: str = "0.1.0",
) -> FastAPI:
    """The base app of service ``name``; the service adds its routes to what this returns."""
    app = FastAPI(title=f"lingxi {name}", version=version, lifespan=lifespan)
    metrics = Metrics(name)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.health = health
    app.add_middleware(KernelMiddleware, settings=settings, metrics=metrics, render=render_error)
    install_error_handlers(app, render_error)

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health")
    async def health_route() -> JSONResponse:
        report = await evaluate(app.state.health)
        return JSONResponse(render_health(report), status_code=report.status_code)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_state(name: str) -> Any:
    """A route's dependency on ``app.state.<name>``, for HTTP and WebSocket routes alike.

    Services name it once with its type: ``TranscriberDep = Annotated[Transcriber, app_state("transcriber")]``.
    """

    async def from_app_state(connection: HTTPConnection) -> Any:  # async: FastAPI runs sync ones in a thread
        return getattr(connection.app.state, name)

    return Depends(from_app_state)
