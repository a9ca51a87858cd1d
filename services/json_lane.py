"""JSON lanes: a hot JSON endpoint answered past FastAPI's router and request handler.

A hot endpoint that takes one pydantic body and ``app_state`` dependencies, and answers a
``Response``, spends more time in FastAPI (matching across every included router, the exception
and exit-stack middleware, the request handler's content-type parsing, ``json.loads``, the
dependency solver, ``validate_python``) than in its own work. ``include_router(app, router)``
includes ``router`` as ``app.include_router`` does and puts each route of it that has this shape on
the app's lanes; ``JsonLanes``, a middleware inside the kernel's (so ids, auth, limits, metrics and
the log line are the same), answers a request for that method and path itself: the bytes validated
with ``model_validate_json``, the dependencies looked up on ``app.state``, an error raised by the
endpoint rendered by the app's own exception handler for it.

Anything else goes to FastAPI: another content type, an empty body, a body that does not validate
(so every validation error is FastAPI's answer, byte for byte), an app with dependency overrides,
every route of another shape, and every route included with dependencies of its own. The OpenAPI
schema, 404s and 405s stay FastAPI's.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP_STATE_NAME = "lingxi_app_state"  # set by ``services.app.app_state`` on its dependency
LANES = "json_lanes"  # the app.state attribute holding {(method, path): Lane}


@dataclass(frozen=True)
class Lane:
    route: APIRoute  # as declared: what ``scope["route"]`` is on FastAPI's way too (the metrics' label)
    endpoint: Callable[..., Awaitable[Response]]
    model: type[BaseModel]
    body_name: str
    state_names: dict[str, str]  # {parameter: app.state attribute}

    def parse(self, body: bytes) -> BaseModel | None:
        try:
            return self.model.model_validate_json(body) if body else None
        except ValidationError:
            return None

    async def answer(self, value: BaseModel, state: Any) -> Response:
        kwargs = {name: getattr(state, attr) for name, attr in self.state_names.items()}
        return await self.endpoint(**{self.body_name: value}, **kwargs)


def include_router(app: FastAPI, router: APIRouter, *, prefix: str = "", **options: Any) -> None:
    """``app.include_router(router, prefix=prefix, **options)``, each route of the lanes' shape on a lane."""
    app.include_router(router, prefix=prefix, **options)
    if options.get("dependencies"):
        return  # the including router's dependencies run on FastAPI's way only
    lanes: dict[tuple[str, str], Lane] = getattr(app.state, LANES)
    for route in router.routes:
        lane = lane_of(route) if isinstance(route, APIRoute) else None
        if lane is not None:
            for method in lane.route.methods or ():
                lanes.setdefault((method, prefix + lane.route.path), lane)


class JsonLanes:
    """ASGI middleware: a JSON request on one of the app's lanes is answered here, all else by FastAPI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = _lane_for(scope)
        if lane is None:
            await self.app(scope, receive, send)
            return
        service: FastAPI = scope["app"]
        answering = _Answering(send)
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client went away before its body was in
            value = lane.parse(body)
            if value is not None:
                scope["route"], scope["endpoint"] = lane.route, lane.endpoint
                response = await lane.answer(value, service.state)
                await response(scope, receive, answering)
                return
        except Exception as exc:
            handler = None if answering.started else _exception_handler(service, exc)
            if handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            response = await response if inspect.isawaitable(response) else response
            await response(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)  # FastAPI answers the body's error


def lane_of(route: APIRoute) -> Lane | None:
    """The route's lane if it fits: one pydantic body, ``app_state`` dependencies only, a ``Response`` answer."""
    dependant: Dependant = route.dependant
    if route.response_field is not None or route.dependencies or len(dependant.body_params) != 1:
        return None  # FastAPI would validate or serialise the answer, or run route-level dependencies
    if route._embed_body_fields or dependant.path_params or dependant.query_params:
        return None
    if dependant.header_params or dependant.cookie_params or _special_params(dependant):
        return None
    if getattr(route, "max_body_size", None) is not None or not inspect.iscoroutinefunction(dependant.call):
        return None
    body = dependant.body_params[0]
    model = body.field_info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or body.field_info.alias not in (None, body.name):
        return None
    state_names = {}
    for sub in dependant.dependencies:
        attr = getattr(sub.call, APP_STATE_NAME, None)
        if attr is None or sub.name is None:
            return None
        state_names[sub.name] = attr
    return Lane(route, dependant.call, model, body.name, state_names)


def _lane_for(scope: Scope) -> Lane | None:
    if scope["type"] != "http":
        return None
    service = scope["app"]
    lanes = getattr(service.state, LANES, None)
    if not lanes or service.dependency_overrides:
        return None
    path, root = scope["path"], scope.get("root_path", "")
    lane = lanes.get((scope["method"], path[len(root) :] if root and path.startswith(root) else path))
    if lane is None or not _is_json(_header(scope, b"content-type")):
        return None
    return lane


async def _read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read handed out first."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class _Answering:
    """``send``, remembering whether the response has started (after that an error can only end it)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = True
        await self.send(message)


def _exception_handler(app: FastAPI, exc: Exception) -> Callable[..., Any] | None:
    """The handler Starlette's exception middleware would pick for ``exc``; None: it would not handle it."""
    handlers = app.exception_handlers
    if isinstance(exc, HTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for kind in type(exc).__mro__:
        if kind in handlers and kind is not Exception:  # Exception's (and 500's) is the outermost middleware's
            return handlers[kind]
    return None


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _special_params(dependant: Dependant) -> bool:
    return any(
        name is not None
        for name in (
            dependant.request_param_name,
            dependant.websocket_param_name,
            dependant.http_connection_param_name,
            dependant.response_param_name,
            dependant.background_tasks_param_name,
            dependant.security_scopes_param_name,
        )
    )


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
