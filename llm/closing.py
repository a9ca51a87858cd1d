"""How many tokens a constrained answer needs at its end to close validly: the closing reserve.

As ``max_tokens`` nears, the llama.cpp engine steers a JSON answer or a forced tool call to its
shortest valid end (``llm.engines.llamacpp_model``). It must start early enough to write whatever
the schema still requires: each required property's key and a minimal value, and the brackets.
This counts that from the schema, in tokens of a typical BPE vocabulary (about four characters of
a key per token), with room to spare; an answer given fewer tokens than that closes from the start.
"""

from __future__ import annotations

from typing import Any

SPARE = 1.3  # tokenisers differ: keep a third as much again
FLOOR = 8  # a string to close and a bracket or two
PER_KEY = 4  # the comma, quotes and colon around a key
UNKNOWN = 6  # a value whose schema says little ($ref elsewhere, anyOf, ...)


def reserve(schema: dict[str, Any] | None, root: dict[str, Any] | None = None) -> int:
    """Tokens to keep for closing an answer that must match ``schema`` (None: any JSON object)."""
    return max(FLOOR, round(SPARE * value_tokens(schema or {"type": "object"}, root or schema or {}, depth=0)))


def call_reserve(name: str, parameters: dict[str, Any]) -> int:
    """Tokens to keep for closing a forced call ``{"name": ..., "arguments": {...}}``."""
    wrapper = 2 * PER_KEY + len(name) // 4 + 2
    return max(FLOOR, round(SPARE * (wrapper + value_tokens(parameters, parameters, depth=0))))


def value_tokens(schema: Any, root: dict[str, Any], depth: int) -> int:
    if not isinstance(schema, dict) or depth > 8:
        return UNKNOWN
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        target: Any = root
        for part in reference[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return value_tokens(target, root, depth + 1)
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        return 2 + max((len(str(value)) // 4 for value in values), default=0)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        return min(value_tokens(option, root, depth + 1) for option in options)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        required = [key for key in schema.get("required") or [] if isinstance(key, str)]
        keys = sum(PER_KEY + len(key) // 4 + value_tokens(properties.get(key), root, depth + 1) for key in required)
        return 2 + keys
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return 2 + int(schema.get("minItems") or 0) * (1 + value_tokens(items, root, depth + 1))
    if kind == "string":
        return 2 + int(schema.get("minLength") or 0) // 3
    return 2  # a number, a boolean, null
