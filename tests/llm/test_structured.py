"""Schemas, grammars and tool definitions, checked without a model (llama.cpp's grammar converter runs)."""

import json
import re

import pytest

from llm import structured, tool_calls, tools
from services.errors import BadRequest


def as_regex(gbnf: str) -> re.Pattern[str]:
    """The number rules use only literals, digit classes, {n}, | and (): the same thing as a regex."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), gbnf).replace(" ", ""))


@pytest.mark.parametrize(
    ("low", "high"), [(0, 9), (0, 100), (1, 12), (-5, 5), (-100, -3), (13, 987), (7, 7), (-1, 0), (-999, 12345)]
)
def test_an_integer_range_rule_matches_exactly_the_integers_in_it(low, high):
    rule = as_regex(structured.integer_range(low, high))
    for n in range(low - 150, high + 150):
        assert bool(rule.fullmatch(str(n))) == (low <= n <= high), n
    assert not rule.fullmatch("-0") and not rule.fullmatch("01")


def test_a_bounded_number_rule_only_allows_numbers_inside_the_bounds():
    gbnf = structured.number_rule({"type": "number", "minimum": -2.5, "exclusiveMaximum": 3}, integer=False)
    rule = as_regex(gbnf.removesuffix(" space"))
    for text in ("-2", "0", "2", "1.999", "-1.5", "0.25"):
        assert rule.fullmatch(text), text
    for text in ("3", "3.0", "-3", "-2.6", "4", "12"):
        assert not rule.fullmatch(text), text


def test_a_schema_becomes_a_grammar_with_its_properties_enums_and_bounds():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "colour": {"enum": ["red", "green"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["name", "age"],
    }
    grammar = structured.json_grammar(structured.JsonAnswer(schema, "schema"))
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    assert rules["root"].startswith('"{" space name-kv "," space age-kv')  # required ones first, in order
    assert rules["colour"] == '"\\"red\\"" | "\\"green\\""'
    age = as_regex(rules["age"].removesuffix(" space"))
    assert age.fullmatch("130") and age.fullmatch("0") and not age.fullmatch("131")


def test_strings_in_the_grammar_take_no_raw_control_characters():
    grammar = structured.json_grammar(structured.JsonAnswer({"type": "string"}, "schema"))
    char = dict(line.split(" ::= ", 1) for line in grammar.splitlines())["char"]
    plain = re.compile(char.split(" | ")[0])  # the unescaped characters: a class that reads the same as a regex
    assert all(plain.fullmatch(text) for text in ("a", "é", "北", " "))
    assert not any(plain.fullmatch(text) for text in ("\n", "\t", "\x00", '"', "\\"))  # a raw newline is invalid JSON


BAD_SCHEMAS = [
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "'b'"),
    ({"type": "thing"}, "type must be one of"),
    ({"type": "string", "pattern": "[a-z]+"}, "anchored"),
    ({"type": "string", "pattern": "^([a-z]$"}, "regular expression"),
    ({"type": "integer", "minimum": 10, "maximum": 1}, "minimum and maximum"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "points at nothing"),
    ({"enum": []}, "enum"),
    ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems is larger"),
    ({"type": "object", "properties": {"a": 5}}, "properties.a must be a JSON Schema"),
    ({"not": {"type": "string"}}, "'not'"),
]


@pytest.mark.parametrize(("schema", "named"), BAD_SCHEMAS)
def test_a_schema_the_grammar_cannot_guarantee_is_a_400_naming_the_problem(schema, named):
    with pytest.raises(BadRequest, match=re.escape(named)):
        structured.json_grammar(structured.JsonAnswer(schema, "response_format.json_schema.schema"))


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"type": "xml"}, "response_format.type"),
        ("json", "response_format must be an object"),
        ({"type": "json_schema"}, "response_format.json_schema must be"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}, "schema must be a JSON Schema"),
    ],
)
def test_a_malformed_response_format_is_a_400(value, named):
    with pytest.raises(BadRequest, match=re.escape(named)):
        structured.json_answer({"response_format": value})


def test_ollama_format_becomes_openais_response_format():
    assert structured.response_format_of("json") == {"type": "json_object"}
    schema = {"type": "object"}
    assert structured.response_format_of(schema)["json_schema"]["schema"] == schema
    assert structured.response_format_of(None) is None and structured.response_format_of("") is None
    with pytest.raises(BadRequest, match="format must be"):
        structured.response_format_of("yaml")


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def test_tool_choice_picks_what_the_model_may_do():
    assert tools.tool_use({"tools": [WEATHER]}).must_call is False
    assert tools.tool_use({"tools": [WEATHER], "tool_choice": "none"}) is None
    assert tools.tool_use({"tools": [WEATHER, TIME], "tool_choice": "required"}).must_call is True
    named = tools.tool_use(
        {"tools": [WEATHER, TIME], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
    )
    assert [function.name for function in named.functions] == ["get_time"] and named.must_call


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "'nope'"),
        ({"tools": {"a": 1}}, "tools must be a list"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER, WEATHER]}, "same name"),
        ({"tool_choice": "required"}, "tool_choice needs tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice must be"),
    ],
)
def test_malformed_tools_are_a_400_naming_the_problem(params, named):
    with pytest.raises(BadRequest, match=re.escape(named)):
        tools.tool_use(params)


def test_a_tool_whose_parameters_the_grammar_cannot_guarantee_is_a_400():
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "minProperties": 1}}}
    with pytest.raises(BadRequest, match=r"tools\[0\].function.parameters.*minProperties"):
        tools.call_grammar(tools.tool_use({"tools": [bad], "tool_choice": "required"}))


def test_earlier_calls_and_tool_results_are_rendered_for_a_template_without_tools():
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees, sunny"},
    ]
    turns = tools.template_turns(messages, tools.tool_use({"tools": [WEATHER]}))
    assert [turn["role"] for turn in turns] == ["system", "user", "assistant", "user"]
    assert "get_weather" in turns[0]["content"] and '"city"' in turns[0]["content"]
    assert json.loads(turns[2]["content"]) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert turns[3]["content"] == "The function get_weather returned: 18 degrees, sunny"


def test_a_generated_call_becomes_an_openai_tool_call():
    use = tools.tool_use({"tools": [WEATHER]})
    for answer in (
        '{"name": "get_weather", "arguments": {"city": "北京"}}',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>',
        '```json\n{"name": "get_weather", "arguments": "{\\"city\\": \\"北京\\"}"}\n```',
    ):
        reader = tool_calls.CallReader(use)
        reader.read(answer)
        [call] = reader.new_calls()
        assert call["type"] == "function" and call["id"].startswith("call_")
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "北京"}
    for text in ("It is sunny.", '{"name": "get_weather", "argu', '{"name": "not_a_tool", "arguments": {}}'):
        reader = tool_calls.CallReader(use)
        reader.read(text)
        assert reader.new_calls() == []


def test_the_reader_stops_at_a_repeated_or_an_answered_call():
    use = tools.tool_use({"tools": [WEATHER]})
    paris = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    reader = tool_calls.CallReader(use)
    reader.read(f"<tool_call>{paris}</tool_call>\n<tool_call>{paris}")
    assert reader.stop and len(reader.new_calls()) == 1
    call = {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    answered = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"},
    ]
    reader = tool_calls.CallReader(use, tool_calls.answered_calls(answered))
    reader.read(paris)
    assert reader.stop and reader.new_calls() == []
    assert tools.results_as_text(answered)[1:] == [
        {"role": "user", "content": "The function get_weather returned: 18 degrees"}
    ]
