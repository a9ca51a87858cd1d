"""Structured outputs: OpenAI's ``response_format`` and Ollama's ``format``, checked before any token.

Every engine sees the request's ``response_format`` checked here first: a malformed one is a 400
naming the problem. Upstream engines then pass it on as it is (the upstream checks the schema
itself). The llama.cpp engine turns it into a GBNF grammar with ``json_grammar``: the JSON-Schema
converter that ships with llama-cpp-python, plus integer and number bounds, which that converter
leaves out. A schema that uses what the grammar cannot guarantee (``uniqueItems``, ``not``, ...) is
a 400 naming the keyword, so an answer that ends by itself always validates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from services.errors import BadRequest

TYPES = {"string", "number", "integer", "boolean", "null", "object", "array"}
# JSON Schema keywords that the grammar cannot enforce; any other unknown keyword is ignored, as JSON Schema does
UNSUPPORTED = {
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "uniqueItems",
    "multipleOf",
    "contains",
    "minContains",
    "maxContains",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
    "$dynamicRef",
    "$recursiveRef",
}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
LIMIT = 10**15 - 1  # an unbounded side of a number range: 15 digits, what llama.cpp's number rule allows
FRACTION = '"." [0-9]{1,6}'
# a character inside a JSON string, as llama.cpp's C++ converter has it: no raw control characters
# (llama-cpp-python's Python copy allows them, and a raw newline makes the answer invalid JSON)
CHAR = r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


@dataclass(frozen=True)
class JsonAnswer:
    """The request wants JSON: any object (``schema`` None) or one valid against ``schema``."""

    schema: dict[str, Any] | None
    where: str  # the request field the schema came from, for error messages


def json_answer(params: dict[str, Any]) -> JsonAnswer | None:
    """Read OpenAI's ``response_format``; None when the answer is free text."""
    value = params.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise BadRequest('response_format must be an object like {"type": "json_object"}')
    kind = value["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return JsonAnswer(None, "response_format")
    if kind != "json_schema":
        raise BadRequest(f"response_format.type must be text, json_object or json_schema, not {kind!r}")
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise BadRequest('response_format.json_schema must be an object like {"name": "...", "schema": {...}}')
    schema = spec.get("schema")
    if schema is None:
        return JsonAnswer(None, "response_format.json_schema")
    if not isinstance(schema, dict):
        raise BadRequest("response_format.json_schema.schema must be a JSON Schema object")
    return JsonAnswer(schema, "response_format.json_schema.schema")


def response_format_of(value: Any) -> dict[str, Any] | None:
    """Ollama's (and the seed API's) ``format``: ``"json"`` or a JSON schema, as OpenAI's ``response_format``."""
    if value is None or value == "":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": value, "strict": True}}
    raise BadRequest(f'format must be "json" or a JSON schema object, not {value!r}')


# --- the grammar (llama.cpp engine) --------------------------------------------------------------
def json_grammar(answer: JsonAnswer) -> str:
    """GBNF that only lets through JSON valid against the schema (any JSON object without one)."""
    schema = answer.schema if answer.schema is not None else {"type": "object"}
    check_supported(schema, answer.where, schema)
    converter = converter_for(schema)
    visit(converter, schema, "", answer.where)
    return converter.format_grammar()


def converter_for(root: dict[str, Any]) -> Any:
    from llama_cpp.llama_grammar import BuiltinRule, SchemaConverter

    class BoundedConverter(SchemaConverter):
        """llama-cpp-python's converter, plus number bounds, every keyword of a list ``type``, strict strings."""

        def _add_primitive(self, name: str, rule: Any) -> str:
            return str(super()._add_primitive(name, BuiltinRule(CHAR, []) if name == "char" else rule))

        def visit(self, schema: dict[str, Any], name: str) -> str:
            types = schema.get("type")
            plain = not ({"$ref", "anyOf", "oneOf", "const", "enum"} & schema.keys())
            if isinstance(types, list) and plain:
                rest = {key: value for key, value in schema.items() if key != "type"}
                return self.visit({"anyOf": [{**rest, "type": kind} for kind in types]}, name)
            if types in ("integer", "number") and plain and any(bound in schema for bound in BOUNDS):
                rule_name = f"{name}-" if name in {"root", "integer", "number"} else name or "root"
                return str(self._add_rule(rule_name, number_rule(schema, types == "integer")))
            return str(super().visit(schema, name))

    converter = BoundedConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter.resolve_refs(root, "")
    return converter


def visit(converter: Any, schema: dict[str, Any], name: str, where: str) -> None:
    try:
        converter.visit(schema, name)
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:  # the converter's own checks
        raise BadRequest(f"{where} cannot be turned into a grammar: {exc or type(exc).__name__}") from None


def check_supported(schema: Any, where: str, root: dict[str, Any]) -> None:
    """Reject what is not a JSON Schema, and what the grammar cannot guarantee, naming the place."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{where} must be a JSON Schema object, not {schema!r}")
    for keyword in sorted(UNSUPPORTED & schema.keys()):
        raise BadRequest(f"{where}: the JSON Schema keyword {keyword!r} is not supported by constrained decoding")
    types = schema.get("type")
    listed = types if isinstance(types, list) else [types] if types is not None else []
    if not listed and "type" in schema or any(kind not in TYPES for kind in listed):
        raise BadRequest(f"{where}.type must be one of {sorted(TYPES)} (or a list of them), not {types!r}")
    check_keywords(schema, where, root)
    for key in ("properties", "$defs", "definitions"):
        children = schema.get(key, {})
        if not isinstance(children, dict):
            raise BadRequest(f"{where}.{key} must be an object mapping names to schemas")
        for child, sub in children.items():
            check_supported(sub, f"{where}.{key}.{child}", root)
    extra = schema.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool):
        check_supported(extra, f"{where}.additionalProperties", root)
    items = schema.get("items")
    for i, sub in enumerate(items if isinstance(items, list) else [items] if items is not None else []):
        check_supported(sub, f"{where}.items" + (f"[{i}]" if isinstance(items, list) else ""), root)
    for key in ("prefixItems", "anyOf", "oneOf"):
        if key in schema:
            if not isinstance(schema[key], list) or not schema[key]:
                raise BadRequest(f"{where}.{key} must be a non-empty list of schemas")
            for i, sub in enumerate(schema[key]):
                check_supported(sub, f"{where}.{key}[{i}]", root)


def check_keywords(schema: dict[str, Any], where: str, root: dict[str, Any]) -> None:
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise BadRequest(f"{where}.required must be a list of property names")
    missing = [name for name in required if name not in schema.get("properties", {})]
    if missing:
        raise BadRequest(f"{where}.required names {missing[0]!r}, which is not among its properties")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise BadRequest(f"{where}.enum must be a non-empty list")
    for low, high in (("minItems", "maxItems"), ("minLength", "maxLength")):
        for key in (low, high):
            if key in schema and (not isinstance(schema[key], int) or isinstance(schema[key], bool) or schema[key] < 0):
                raise BadRequest(f"{where}.{key} must be a non-negative integer")
        if schema.get(low, 0) > schema.get(high, math.inf):
            raise BadRequest(f"{where}: {low} is larger than {high}")
    if "pattern" in schema:
        check_pattern(schema, where)
    if "$ref" in schema:
        check_ref(schema["$ref"], where, root)
    for key in BOUNDS:
        if key in schema and (not isinstance(schema[key], int | float) or isinstance(schema[key], bool)):
            raise BadRequest(f"{where}.{key} must be a number")
    if schema.get("type") in ("integer", "number") and any(bound in schema for bound in BOUNDS):
        smallest, largest = integer_bounds(schema)
        if smallest > largest:
            kind = "integers" if schema["type"] == "integer" else "integers (the grammar bounds whole numbers)"
            raise BadRequest(f"{where}: no {kind} lie between its minimum and maximum")


def check_pattern(schema: dict[str, Any], where: str) -> None:
    pattern = schema["pattern"]
    if not isinstance(pattern, str):
        raise BadRequest(f"{where}.pattern must be a string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise BadRequest(f"{where}.pattern is not a valid regular expression: {exc}") from None
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise BadRequest(f"{where}.pattern must be anchored (start with ^ and end with $) for constrained decoding")
    if "minLength" in schema or "maxLength" in schema:
        raise BadRequest(f"{where}: pattern with minLength/maxLength is not supported; put the length in the pattern")


def check_ref(ref: Any, where: str, root: dict[str, Any]) -> None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise BadRequest(f"{where}.$ref must point inside the schema (#/$defs/...), not {ref!r}")
    target: Any = root
    for part in filter(None, ref[1:].split("/")):
        if not isinstance(target, dict) or part not in target:
            raise BadRequest(f"{where}.$ref {ref!r} points at nothing in the schema")
        target = target[part]


# --- number ranges (llama.cpp's build_min_max_int, for two bounds) -------------------------------
def integer_bounds(schema: dict[str, Any]) -> tuple[int, int]:
    low, high = -LIMIT, LIMIT
    if "minimum" in schema:
        low = max(low, math.ceil(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        high = min(high, math.floor(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
    return max(low, -LIMIT), min(high, LIMIT)


def number_rule(schema: dict[str, Any], integer: bool) -> str:
    """Whole numbers in the bounds; for ``number`` also n.ddd where every such value stays inside them."""
    low, high = integer_bounds(schema)
    alternatives = [integer_range(low, high)]
    if not integer:
        if max(low, 0) <= high - 1:  # n >= 0: n.ddd lies in [n, n+1)
            alternatives.append(f"({integer_range(max(low, 0), high - 1)}) {FRACTION}")
        if low + 1 <= min(high, -1):  # n < 0: -|n|.ddd lies in (n-1, n]
            alternatives.append(f"({integer_range(low + 1, min(high, -1))}) {FRACTION}")
    return "(" + " | ".join(f"({alternative})" for alternative in alternatives) + ") space"


def integer_range(low: int, high: int) -> str:
    """GBNF for the decimal integers in [low, high], without leading zeros or "-0"."""
    if high < 0:
        return f'"-" ({integer_range(-high, -low)})'
    alternatives = []
    if low < 0:
        alternatives.append(f'"-" ({integer_range(1, -low)})')
        low = 0
    low_text, high_text = str(low), str(high)
    for digits in range(len(low_text), len(high_text)):
        alternatives.append(same_length_range(low_text, "9" * digits))
        low_text = "1" + "0" * digits
    alternatives.append(same_length_range(low_text, high_text))
    return " | ".join(alternatives)


def same_length_range(low: str, high: str) -> str:
    """GBNF for the numbers from ``low`` to ``high``, both written with the same number of digits."""
    same = 0
    while same < len(low) and low[same] == high[same]:
        same += 1
    parts = [f'"{low[:same]}"'] if same else []
    if same == len(low):
        return " ".join(parts)
    first, last = low[same], high[same]
    rest = len(low) - same - 1
    if rest == 0:
        return " ".join([*parts, digits(first, last)])
    low_rest, high_rest = low[same + 1 :], high[same + 1 :]
    zeros, nines = "0" * rest, "9" * rest
    alternatives = []
    reached = False
    if low_rest == zeros:
        alternatives.append(f"{digits(first, chr(ord(last) - 1))} {any_digits(rest)}")
    else:
        alternatives.append(f"[{first}] ({same_length_range(low_rest, nines)})")
        if first < chr(ord(last) - 1):
            if high_rest == nines:
                alternatives.append(f"{digits(chr(ord(first) + 1), last)} {any_digits(rest)}")
                reached = True
            else:
                alternatives.append(f"{digits(chr(ord(first) + 1), chr(ord(last) - 1))} {any_digits(rest)}")
    if not reached:
        alternatives.append(f"[{last}] ({same_length_range(zeros, high_rest)})")
    return " ".join([*parts, "(" + " | ".join(alternatives) + ")"])


def digits(first: str, last: str) -> str:
    return f"[{first}]" if first == last else f"[{first}-{last}]"


def any_digits(count: int) -> str:
    return "[0-9]" if count == 1 else f"[0-9]{{{count}}}"
