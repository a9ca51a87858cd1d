"""Readiness: what /health answers.

A service hands ``create_app`` a ``health`` callable returning a ``Health``. ``ok`` → 200; anything
else → 503 with a ``detail`` telling the operator what to do. ``extra`` carries the seed's fields
(e.g. llm's ``model``, websearch's ``service``).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    ok = "ok"
    loading = "loading"
    not_configured = "not_configured"
    error = "error"


@dataclass
class Health:
    status: Status
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status is Status.ok

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.extra)
        body["status"] = self.status.value
        if self.detail:
            body["detail"] = self.detail
        return body

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503


HealthCheck = Callable[[], "Health | Awaitable[Health]"]


async def evaluate(check: HealthCheck) -> Health:
    result = check()
    if inspect.isawaitable(result):
        result = await result
    return result
