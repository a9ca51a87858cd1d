"""JSON by orjson (several times faster than the json module, compact, UTF-8), falling back to the
json module for what orjson refuses: integers beyond 64 bits, keys that are not strings, and on
reading NaN and Infinity (which Python's json writes)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False).encode()


def loads(data: bytes) -> Any:
    """The value of JSON ``data``; ``ValueError`` if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
