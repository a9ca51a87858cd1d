"""``JsonBodyRoute``: FastAPI's route, with a short way in for a valid JSON body.

A hot endpoint that takes one pydantic body and ``app_state`` dependencies, and answers a
``Response``, spends more time in FastAPI's generic request handler (content-type parsing, the
body's ``json.loads``, the dependency solver, ``validate_python``) than in its own work. For such an
endpoint this route validates the bytes with ``model_validate_json`` and looks its dependencies up
on ``app.state`` directly. Anything else — another content type, an empty body, a body that does not
validate, an app with dependency overrides — goes to FastAPI's own handler, so every error answer
is FastAPI's, unchanged. Routing, the exception handlers, the kernel middleware and the OpenAPI
schema are FastAPI's in every case; an endpoint of another shape gets FastAPI's handler only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import fastapi.routing
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
APP_STATE_NAME = "lingxi_app_state"  # set by ``services.app.app_state`` on its dependency


class JsonBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        stock = super().get_route_handler()
        shape = _lean_shape(_effective_route(self))
        if shape is None:
            return stock
        endpoint, model, body_name, state_names = shape

        async def handle(request: Request) -> Response:
            if not _is_json(request.headers.get("content-type", "")) or request.app.dependency_overrides:
                return await stock(request)
            body = await request.body()
            try:
                value = model.model_validate_json(body) if body else None
            except ValidationError:
                value = None
            if value is None:  # FastAPI's handler answers the error (the body is cached on the request)
                return await stock(request)
            state = request.app.state
            kwargs = {name: getattr(state, attr) for name, attr in state_names.items()}
            return await endpoint(**{body_name: value}, **kwargs)

        return handle


def _effective_route(route: APIRoute) -> Any:
    """The route as included in its app (prefix, the including router's dependencies), as FastAPI's own
    ``get_route_handler`` sees it; a FastAPI that copies included routes has no such context."""
    included = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = included.get() if included is not None else None
    return context if context is not None and context.original_route is route else route


Shape = tuple[Callable[..., Coroutine[Any, Any, Response]], type[BaseModel], str, dict[str, str]]


def _lean_shape(route: Any) -> Shape | None:
    """(endpoint, body model, its parameter, {parameter: app.state attribute}) if it fits the short way."""
    dependant: Dependant = route.dependant
    if route.response_field is not None or route.dependencies or len(dependant.body_params) != 1:
        return None  # FastAPI would validate or serialise the answer, or run route-level dependencies
    if route._embed_body_fields or dependant.path_params or dependant.query_params:
        return None
    if dependant.header_params or dependant.cookie_params or _special_params(dependant):
        return None
    if not inspect.iscoroutinefunction(dependant.call):
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
    return dependant.call, model, body.name, state_names


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
