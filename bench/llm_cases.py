"""The structured-output and tool-call cases of ``bench/llm.py``: varied schemas and tools, each with a prompt."""

from __future__ import annotations

from typing import Any

STRING = {"type": "string", "maxLength": 40}

# (prompt, schema): nested objects, arrays, enums, required fields, numbers with bounds, patterns, $refs
SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    (
        "Describe a cat.",
        {"type": "object", "properties": {"name": STRING, "age": {"type": "integer"}}, "required": ["name", "age"]},
    ),
    (
        "Give a person with an age between 18 and 99.",
        {
            "type": "object",
            "properties": {"name": STRING, "age": {"type": "integer", "minimum": 18, "maximum": 99}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    ),
    (
        "Rate the movie Titanic from 0 to 10.",
        {
            "type": "object",
            "properties": {"rating": {"type": "number", "minimum": 0, "maximum": 10}},
            "required": ["rating"],
        },
    ),
    (
        "What colour is the sky?",
        {
            "type": "object",
            "properties": {"colour": {"enum": ["red", "green", "blue", "black"]}},
            "required": ["colour"],
        },
    ),
    (
        "List three fruits.",
        {
            "type": "object",
            "properties": {"fruits": {"type": "array", "items": STRING, "minItems": 3, "maxItems": 3}},
            "required": ["fruits"],
        },
    ),
    (
        "Give the capital of France and its country.",
        {
            "type": "object",
            "properties": {
                "city": STRING,
                "country": {"type": "object", "properties": {"name": STRING}, "required": ["name"]},
            },
            "required": ["city", "country"],
        },
    ),
    ("Is water wet?", {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}),
    (
        "Give a temperature in Celsius below zero.",
        {
            "type": "object",
            "properties": {"celsius": {"type": "integer", "minimum": -80, "exclusiveMaximum": 0}},
            "required": ["celsius"],
        },
    ),
    (
        "Write a date in 2024.",
        {"type": "object", "properties": {"date": {"type": "string", "format": "date"}}, "required": ["date"]},
    ),
    (
        "Give a product code like AB-123.",
        {
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}},
            "required": ["code"],
        },
    ),
    (
        "Give two points on a plane.",
        {
            "type": "object",
            "properties": {
                "points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "x": {"type": "integer", "minimum": -100, "maximum": 100},
                            "y": {"type": "integer", "minimum": -100, "maximum": 100},
                        },
                        "required": ["x", "y"],
                    },
                    "minItems": 2,
                    "maxItems": 2,
                }
            },
            "required": ["points"],
        },
    ),
    (
        "Classify the sentence 'I love this!' by sentiment.",
        {
            "type": "object",
            "properties": {
                "sentiment": {"enum": ["positive", "negative", "neutral"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["sentiment", "confidence"],
        },
    ),
    (
        "Give a book with its author and year.",
        {
            "type": "object",
            "properties": {
                "title": STRING,
                "author": {
                    "type": "object",
                    "properties": {"first": STRING, "last": STRING},
                    "required": ["first", "last"],
                },
                "year": {"type": "integer", "minimum": 1000, "maximum": 2025},
            },
            "required": ["title", "author", "year"],
        },
    ),
    ("Name a number between 1 and 5.", {"type": "integer", "minimum": 1, "maximum": 5}),
    ("Name an animal.", {"type": "string", "maxLength": 20}),
    (
        "List up to four prime numbers.",
        {"type": "array", "items": {"type": "integer", "minimum": 2, "maximum": 100}, "maxItems": 4},
    ),
    (
        "Describe an order with items and a status.",
        {
            "type": "object",
            "properties": {
                "status": {"enum": ["new", "paid", "shipped"]},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"sku": STRING, "quantity": {"type": "integer", "minimum": 1, "maximum": 9}},
                        "required": ["sku", "quantity"],
                    },
                    "maxItems": 3,
                },
            },
            "required": ["status", "items"],
        },
    ),
    (
        "Give a user with an optional nickname.",
        {
            "type": "object",
            "properties": {"name": STRING, "nickname": {"type": ["string", "null"], "maxLength": 20}},
            "required": ["name", "nickname"],
        },
    ),
    (
        "Give a shape: a circle or a square.",
        {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "kind": {"const": "circle"},
                        "radius": {"type": "number", "minimum": 0, "maximum": 50},
                    },
                    "required": ["kind", "radius"],
                },
                {
                    "type": "object",
                    "properties": {
                        "kind": {"const": "square"},
                        "side": {"type": "integer", "minimum": 1, "maximum": 50},
                    },
                    "required": ["kind", "side"],
                },
            ]
        },
    ),
    (
        "Describe a family tree of two generations.",
        {
            "$defs": {"person": {"type": "object", "properties": {"name": STRING}, "required": ["name"]}},
            "type": "object",
            "properties": {"parent": {"$ref": "#/$defs/person"}, "child": {"$ref": "#/$defs/person"}},
            "required": ["parent", "child"],
        },
    ),
    (
        "用 JSON 介绍一座中国城市。",
        {
            "type": "object",
            "properties": {"城市": STRING, "人口": {"type": "integer", "minimum": 0, "maximum": 40000000}},
            "required": ["城市", "人口"],
        },
    ),
    (
        "Give a weather report.",
        {
            "type": "object",
            "properties": {
                "city": STRING,
                "celsius": {"type": "number", "minimum": -50, "maximum": 50},
                "conditions": {"type": "array", "items": {"enum": ["sun", "rain", "wind", "snow"]}, "maxItems": 2},
            },
            "required": ["city", "celsius", "conditions"],
            "additionalProperties": False,
        },
    ),
]


def function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


WEATHER = function(
    "get_weather", "Current weather in a city", {"city": STRING, "unit": {"enum": ["celsius", "fahrenheit"]}}, ["city"]
)
TIME = function("get_time", "The time in a time zone", {"timezone": STRING}, ["timezone"])
SEARCH = function(
    "search_web",
    "Search the web",
    {"query": STRING, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
    ["query"],
)
EMAIL = function(
    "send_email",
    "Send an email",
    {"to": STRING, "subject": STRING, "body": {"type": "string", "maxLength": 80}},
    ["to", "subject"],
)
CALC = function("calculate", "Evaluate arithmetic", {"expression": STRING}, ["expression"])
TRANSLATE = function(
    "translate",
    "Translate text",
    {"text": STRING, "target": {"enum": ["en", "fr", "de", "zh", "es"]}},
    ["text", "target"],
)
BOOK = function(
    "book_table",
    "Book a restaurant table",
    {
        "restaurant": STRING,
        "people": {"type": "integer", "minimum": 1, "maximum": 12},
        "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
    },
    ["restaurant", "people", "time"],
)
ALL_TOOLS = [WEATHER, TIME, SEARCH, EMAIL, CALC, TRANSLATE, BOOK]

# (prompt, tools, tool_choice): every case must end in a call
TOOL_CASES: list[tuple[str, list[dict[str, Any]], Any]] = [
    ("What's the weather in Paris?", [WEATHER], "required"),
    ("Is it raining in London right now?", [WEATHER, TIME], "required"),
    ("What time is it in Tokyo?", [WEATHER, TIME], "required"),
    ("Search the web for the tallest building.", [SEARCH], "required"),
    ("Find three articles about penguins.", [SEARCH, CALC], "required"),
    ("Email bob@example.com that the meeting moved.", [EMAIL], "required"),
    ("What is 17 times 23?", [CALC, SEARCH], "required"),
    ("Translate 'good morning' into French.", [TRANSLATE], "required"),
    ("Book a table for 4 at Luigi's at 19:30.", [BOOK], "required"),
    ("北京今天天气怎么样？", [WEATHER, TIME], "required"),
    ("I need the forecast for Berlin in fahrenheit.", ALL_TOOLS, "required"),
    ("Send an email to alice@example.com saying hello.", ALL_TOOLS, "required"),
    ("Weather in Rome?", ALL_TOOLS, {"type": "function", "function": {"name": "get_weather"}}),
    ("Madrid.", ALL_TOOLS, {"type": "function", "function": {"name": "get_time"}}),
    ("Look up the population of Canada.", ALL_TOOLS, {"type": "function", "function": {"name": "search_web"}}),
    ("2 + 2 * 10", ALL_TOOLS, {"type": "function", "function": {"name": "calculate"}}),
    ("Say 'thank you' in German.", ALL_TOOLS, {"type": "function", "function": {"name": "translate"}}),
    ("Dinner for two at Chez Paul, 20:00.", ALL_TOOLS, {"type": "function", "function": {"name": "book_table"}}),
    (
        "Tell carol@example.com the report is ready.",
        ALL_TOOLS,
        {"type": "function", "function": {"name": "send_email"}},
    ),
    ("把“你好”翻译成英文。", ALL_TOOLS, {"type": "function", "function": {"name": "translate"}}),
    ("What's the weather like in Sydney and what time is it there?", [WEATHER, TIME], "required"),
    ("Find a recipe for pancakes.", [SEARCH, EMAIL], "required"),
]
