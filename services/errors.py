"""The one error tree. Engines and routes raise these; one handler per framework renders them.

Third-party exceptions are translated once, at the engine boundary, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class LingxiError(Exception):
    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return error_body(self.status_code, self.message, self.error_type)["error"]


class BadRequest(LingxiError):
    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(LingxiError):
    status_code = 401
    error_type = "authentication_error"


class Forbidden(LingxiError):
    status_code = 403
    error_type = "permission_error"


class NotFound(LingxiError):
    status_code = 404
    error_type = "not_found"


class Conflict(LingxiError):
    status_code = 409
    error_type = "conflict"


class PayloadTooLarge(LingxiError):
    status_code = 413
    error_type = "payload_too_large"


class UnsupportedMediaType(LingxiError):
    status_code = 415
    error_type = "unsupported_media_type"


class Unprocessable(LingxiError):
    status_code = 422
    error_type = "invalid_request_error"


class TooManyRequests(LingxiError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(
        self, message: str = "server is busy, retry shortly", *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, headers=headers or {"Retry-After": "1"})


class UpstreamError(LingxiError):
    status_code = 502
    error_type = "upstream_error"


class UpstreamUnreachable(UpstreamError):
    """No connection to the upstream: nothing was sent, so sending again is safe."""


class NotReady(LingxiError):
    status_code = 503
    error_type = "service_unavailable"


class NotConfigured(NotReady):
    """An engine lacks a setting or an install it needs; the message says what to set."""


class UpstreamTimeout(LingxiError):
    status_code = 504
    error_type = "upstream_timeout"


# OpenAI's ``code`` is a string naming the error, or null; the HTTP status says the rest
CODES = {
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


def error_body(status_code: int, message: str, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """The JSON body of every error: OpenAI's shape (``message``, ``type``, ``param``, ``code``), so SDKs
    show the message."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": CODES.get(status_code)}}


def upstream_status_error(status_code: int, message: str) -> LingxiError:
    """Map an upstream's HTTP error to ours: its 4xx passes through, anything else is a 502."""
    if 400 <= status_code < 500:
        error = LingxiError(message)
        error.status_code = status_code
        error.error_type = "upstream_client_error"
        return error
    return UpstreamError(message)
