"""The seed's ``{code, msg, data}`` envelope, for answers and errors alike."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from services.health import Health


def ok(data: Any, msg: str = "ok", status_code: int = 200) -> JSONResponse:
    return JSONResponse({"code": 0, "msg": msg, "data": data}, status_code=status_code)


def render_error(status: int, message: str, error_type: str = "") -> dict[str, Any]:
    """The kernel's error renderer for opro: HTTP status kept, ``code`` equals it, ``data`` null."""
    if status >= 500 and error_type == "internal_error":
        message = "internal error" if not message.startswith("internal") else message
    return {"code": status, "msg": message, "data": None}


def render_health(report: Health) -> dict[str, Any]:
    """The kernel's /health body for opro: ``data.status`` when ready, else the error envelope saying why."""
    if not report.ready:
        return render_error(503, report.detail or report.status.value)
    return {"code": 0, "msg": "ok", "data": {"status": "ok"}}
