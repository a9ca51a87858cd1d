"""OpenAI's ``GET /v1/models`` body, for a service that names its models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CREATED = 1_700_000_000  # a fixed date: the models are configured, not created at a moment clients care about


def model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "lingxi"}


def model_list(names: Iterable[str]) -> dict[str, Any]:
    return {"object": "list", "data": [model_card(name) for name in dict.fromkeys(names)]}
