"""OpenAI's ``GET /v1/models`` body, for a service that names its models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CREATED = 1_700_000_000  # a fixed date: the models are configured, not created at a moment clients care about


def model_list(names: Iterable[str]) -> dict[str, Any]:
    rows = [{"id": name, "object": "model", "created": CREATED, "owned_by": "lingxi"} for name in dict.fromkeys(names)]
    return {"object": "list", "data": rows}
