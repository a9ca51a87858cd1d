"""``create_flask_app``: the Flask twin of ``services.app.create_app`` (tts is a Flask service).

Same request ids, access log, metrics, auth, error bodies and /health, /livez, /metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from services.auth import is_authorized
from services.errors import LingxiError, error_body
from services.health import Health, HealthCheck
from services.metrics import CONTENT_TYPE_LATEST, Metrics
from services.settings import ServiceSettings

access_log = logging.getLogger("lingxi.access")
log = logging.getLogger("lingxi")


def evaluate_sync(check: HealthCheck) -> Health:
    result = check()
    if inspect.isawaitable(result):
        result = asyncio.run(result)  # type: ignore[arg-type]
    return result


def json_error(status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error_body(status, message, error_type))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def create_flask_app(settings: ServiceSettings, *, name: str, health: HealthCheck) -> Flask:
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    metrics = Metrics(name)
    app.extensions["lingxi"] = {"settings": settings, "metrics": metrics, "health": health}

    @app.before_request
    def start_request() -> Response | None:
        g.started = time.perf_counter()
        g.request_id = (request.headers.get("X-Request-ID") or uuid.uuid4().hex[:16])[:64]
        metrics.in_flight.labels(name).inc()
        g.counted = True
        if not is_authorized(settings.api_key, request.path, request.headers.get("Authorization")):
            return json_error(
                401,
                "missing or invalid API key (send 'Authorization: Bearer <key>')",
                "authentication_error",
                {"WWW-Authenticate": "Bearer"},
            )
        if (request.content_length or 0) > settings.max_request_bytes:
            return json_error(
                413, f"request body is larger than {settings.max_request_bytes} bytes", "payload_too_large"
            )
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        if getattr(g, "counted", False):
            g.counted = False
            metrics.in_flight.labels(name).dec()
            elapsed = time.perf_counter() - g.started
            route = request.url_rule.rule if request.url_rule else "unmatched"
            metrics.observe(request.method, route, response.status_code, elapsed)
            access_log.info(
                "%s %s %s %.1fms rid=%s",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                g.request_id,
            )
        return response

    @app.errorhandler(LingxiError)
    def lingxi_error(exc: LingxiError) -> Response:
        return json_error(exc.status_code, exc.message, exc.error_type, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 404:
            message = f"no route {request.method} {request.path}"
        if status == 413:
            message = f"request body is larger than {settings.max_request_bytes} bytes"
        return json_error(status, message, "invalid_request_error")

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        request_id = getattr(g, "request_id", "?")
        log.exception("unhandled error in %s %s (request id %s)", request.method, request.path, request_id)
        return json_error(500, f"internal server error (request id {request_id})", "internal_error")

    @app.get("/livez")
    def livez() -> Any:
        return {"status": "alive"}

    @app.get("/health")
    def health_route() -> Any:
        report = evaluate_sync(app.extensions["lingxi"]["health"])
        return jsonify(report.body()), report.status_code

    @app.get("/metrics")
    def metrics_route() -> Response:
        return Response(metrics.render(), mimetype=CONTENT_TYPE_LATEST)

    return app
