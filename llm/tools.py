"""Tool calls: OpenAI's ``tools`` + ``tool_choice`` (and Ollama's ``tools``), checked before any token.

Every engine gets the request's tools checked here (a malformed tool or a ``tool_choice`` naming no
tool is a 400). Upstream engines pass them on. The llama.cpp engine answers calls itself:

- the tools reach the model the way it was trained to see them: through its chat template when the
  template takes ``tools`` (Qwen2.5's does; earlier calls and ``role: tool`` results too), otherwise
  described in the system message, with calls shown as JSON and results as user turns;
- ``auto``: the model decides; ``llm.tool_calls`` reads its answer as calls or text;
- ``required`` or a named function: a grammar holds the answer to the JSON object
  ``{"name": ..., "arguments": {...}}`` whose arguments match the function's parameters schema;
- ``none``: the tools are not shown and nothing is constrained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llm.messages import ROLES, text_of
from services.errors import BadRequest

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments


@dataclass(frozen=True)
class ToolUse:
    functions: tuple[Function, ...]  # what the model may call
    must_call: bool  # tool_choice required or a named function: the answer is a call


def tool_use(params: dict[str, Any]) -> ToolUse | None:
    """Read ``tools`` and ``tool_choice``; None when the model answers in text (no tools, or ``none``)."""
    tools, choice = params.get("tools"), params.get("tool_choice")
    if not tools:
        if choice not in (None, "none", "auto"):
            raise BadRequest("tool_choice needs tools")
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools must be a list of {type: function, function: {name, description, parameters}}")
    functions = tuple(function_of(tool, f"tools[{i}]") for i, tool in enumerate(tools))
    names = [function.name for function in functions]
    if len(set(names)) < len(names):
        raise BadRequest("tools: two tools have the same name")
    if choice is None or choice == "auto":
        return ToolUse(functions, must_call=False)
    if choice == "none":
        return None
    if choice == "required":
        return ToolUse(functions, must_call=True)
    named = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(named, str):
        raise BadRequest('tool_choice must be "auto", "none", "required" or {"type": "function", "function": {"name"}}')
    chosen = [function for function in functions if function.name == named]
    if not chosen:
        raise BadRequest(f"tool_choice names {named!r}, which is not among the tools {names}")
    return ToolUse(tuple(chosen), must_call=True)


def function_of(tool: Any, where: str) -> Function:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise BadRequest(f'{where} must be {{"type": "function", "function": {{...}}}}')
    function = tool.get("function")
    if not isinstance(function, dict):
        raise BadRequest(f"{where}.function must be an object with a name")
    name = function.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise BadRequest(f"{where}.function.name must be 1-64 letters, digits, '_', '.' or '-', not {name!r}")
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}.function.parameters must be a JSON Schema object")
    return Function(name, str(function.get("description") or ""), parameters)


# --- the prompt ----------------------------------------------------------------------------------
def template_tools(use: ToolUse) -> list[dict[str, Any]]:
    """The tools as OpenAI sends them, for a chat template that takes ``tools``."""
    return [
        {
            "type": "function",
            "function": {"name": f.name, "description": f.description, "parameters": f.parameters},
        }
        for f in use.functions
    ]


def native_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages for a chat template that knows tools: calls with object arguments, ``tool`` results."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                calls.append({"type": "function", "function": {**function, "arguments": arguments_of(function)}})
            turns.append({"role": "assistant", "content": text_of(message), "tool_calls": calls})
        elif role in ("tool", "function"):
            turns.append({"role": "tool", "content": text_of(message)})
        else:
            turns.append({"role": ROLES.get(str(role), str(role)), "content": text_of(message)})
    return turns


def tool_prompt(use: ToolUse) -> str:
    lines = ["You can call these functions:"]
    for function in use.functions:
        spec = {"name": function.name, "description": function.description, "parameters": function.parameters}
        lines.append(json.dumps(spec, ensure_ascii=False))
    if use.must_call:
        target = f"the function {use.functions[0].name}" if len(use.functions) == 1 else "one of these functions"
        lines.append(f"Call {target} now.")
    else:
        lines.append("If one of them helps to answer, call it; otherwise answer in text.")
    lines.append('A call is only a JSON object: {"name": "<function name>", "arguments": {<its arguments>}}')
    return "\n".join(lines)


def template_turns(messages: list[dict[str, Any]], use: ToolUse | None) -> list[dict[str, Any]]:
    """The messages for a chat template without tools: calls as JSON, results as user turns."""
    names = {}
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                names[call.get("id")] = function.get("name")
                call_json = {"name": function.get("name"), "arguments": arguments_of(function)}
                calls.append(json.dumps(call_json, ensure_ascii=False))
            turns.append({"role": "assistant", "content": "\n".join(filter(None, [text_of(message), *calls]))})
        elif role in ("tool", "function"):
            turns.append(result_turn(message, names))
        else:
            turns.append(message)
    if use is not None:
        prompt = tool_prompt(use)
        if turns and turns[0].get("role") in ("system", "developer") and isinstance(turns[0].get("content"), str):
            turns[0] = {**turns[0], "content": f"{turns[0]['content']}\n\n{prompt}"}
        else:
            turns.insert(0, {"role": "system", "content": prompt})
    return turns


def results_as_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with its calls left out and their results told as user turns, for a model that
    keeps calling what it has the answer to: shown its own calls, a small model writes them again."""
    names = {}
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                names[call.get("id")] = (call.get("function") or {}).get("name")
            if text_of(message).strip():
                turns.append({"role": "assistant", "content": text_of(message)})
        elif role in ("tool", "function"):
            turns.append(result_turn(message, names))
        else:
            turns.append(message)
    return turns


def result_turn(message: dict[str, Any], names: dict[Any, Any]) -> dict[str, Any]:
    """A tool's result as a user turn naming the function (``names``: call id → function name)."""
    name = message.get("tool_name") or message.get("name") or names.get(message.get("tool_call_id"))
    return {"role": "user", "content": f"The function {name or 'you called'} returned: {text_of(message)}"}


def arguments_of(function: dict[str, Any]) -> Any:
    """A call's arguments as an object: OpenAI sends a JSON string, Ollama an object."""
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments if arguments is not None else {}


# --- the grammar and the answer ------------------------------------------------------------------
def call_grammar(use: ToolUse) -> str:
    """GBNF for a call of one of the functions, for ``required`` and a named function."""
    from llm.structured import check_supported, converter_for

    converter = converter_for({})
    calls = []
    for i, function in enumerate(use.functions):
        where = f"tools[{i}].function.parameters"
        parameters = json.loads(json.dumps(function.parameters))  # the converter rewrites $refs in place
        check_supported(parameters, where, parameters)
        converter.resolve_refs(parameters, f"tool{i}")
        try:
            arguments = converter.visit(parameters, f"arguments{i}")
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise BadRequest(f"{where} cannot be turned into a grammar: {exc or type(exc).__name__}") from None
        name = converter._format_literal(json.dumps(function.name))
        calls.append(
            converter._add_rule(
                f"call{i}",
                rf'"{{" space "\"name\"" space ":" space {name} space "," space "\"arguments\"" space ":" space '
                rf'{arguments} "}}" space',
            )
        )
    converter._add_rule("root", " | ".join(calls))
    return str(converter.format_grammar())
