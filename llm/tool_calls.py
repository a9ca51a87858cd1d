"""Reading a model's answer as tool calls, while it is written (``tool_choice`` ``auto`` and forced).

A model that calls writes the call as JSON: Qwen2.5 as ``<tool_call>{"name": …, "arguments": …}</tool_call>``
(one block per call), others as a bare JSON object naming a tool, or one in a ``json`` code block.
``CallReader`` reads such calls from the start of the answer as tokens arrive: the calls complete so
far, and whether the answer has stopped being calls (text after them, a call repeated). Small models
loop: they repeat a call they just wrote, or one whose result the conversation already holds; the
engine stops the generation at the first repetition, and the reader tells it which calls are new.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from llm.tools import ToolUse, arguments_of

CALL_STARTS = ("<tool_call>", "{", "```json")  # how an answer that is a call begins
WRAPPING = re.compile(r"(?:\s|<tool_call>|</tool_call>|```json|```)*")  # between calls
DECODER = json.JSONDecoder()

Call = tuple[str, str]  # name, arguments as canonical JSON


def may_be_call(text: str) -> bool | None:
    """Whether an answer that begins with ``text`` is a call: True, False, or None (can't tell yet)."""
    start = text.lstrip()
    if not start:
        return None
    if any(start.startswith(prefix) for prefix in CALL_STARTS):
        return True
    if any(prefix.startswith(start) for prefix in CALL_STARTS):
        return None
    return False


def canonical(arguments: Any) -> str:
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True)


def answered_calls(messages: list[dict[str, Any]]) -> set[Call]:
    """The calls in the conversation whose results it already holds (a ``tool`` message after them)."""
    answered: set[Call] = set()
    pending: list[Call] = []
    for message in messages:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                pending.append((str(function.get("name")), canonical(arguments_of(function))))
        elif message.get("role") in ("tool", "function"):
            answered.update(pending)
    return answered


class CallReader:
    def __init__(self, use: ToolUse, answered: set[Call] | None = None) -> None:
        self.names = {function.name for function in use.functions}
        self.answered = answered or set()
        self.calls: list[Call] = []  # the complete calls read so far, in order
        self.repeated = False  # a call the answer or the conversation already has
        self.ended = False  # the answer went on with something that is not a call

    def read(self, text: str) -> None:
        """Read the answer written so far (the whole of it, each time)."""
        self.calls, self.repeated, self.ended = [], False, False
        position = 0
        while not (self.repeated or self.ended):
            position = WRAPPING.match(text, position).end()  # type: ignore[union-attr]  # the pattern matches ""
            if position == len(text):
                return
            try:
                value, position = DECODER.raw_decode(text, position)
            except ValueError:  # not finished yet, or not JSON
                self.ended = text[position] != "{"
                return
            call = self.call_of(value)
            if call is None:
                self.ended = True
            elif call in self.calls or call in self.answered:
                self.repeated = True
                self.calls.append(call)
            else:
                self.calls.append(call)

    def call_of(self, value: Any) -> Call | None:
        if not isinstance(value, dict) or value.get("name") not in self.names:
            return None
        arguments = value.get("arguments", value.get("parameters", {}))
        if isinstance(arguments, str):  # some models write the arguments as a JSON string, as OpenAI sends them
            try:
                arguments = json.loads(arguments)
            except ValueError:
                return None
        return (value["name"], canonical(arguments)) if isinstance(arguments, dict) else None

    @property
    def stop(self) -> bool:
        """Whether generating further can only add what will be thrown away."""
        return bool(self.calls) and (self.repeated or self.ended)

    def new_calls(self) -> list[dict[str, Any]]:
        """The complete calls that neither repeat one before them nor one already answered, as OpenAI's."""
        fresh: list[Call] = []
        for call in self.calls:
            if call not in fresh and call not in self.answered:
                fresh.append(call)
        return [openai_call(name, arguments) for name, arguments in fresh]


def partial_call(text: str, use: ToolUse) -> dict[str, Any] | None:
    """A forced call cut short by ``max_tokens``: its name and the arguments written so far, as OpenAI
    returns a call cut by its length limit (``finish_reason: "length"``)."""
    match = re.match(r'\s*\{\s*"name"\s*:\s*"([^"]*)"\s*,\s*"arguments"\s*:\s*(.*)', text, re.S)
    if match is None or match.group(1) not in {function.name for function in use.functions}:
        return None
    return openai_call(match.group(1), match.group(2))


def openai_call(name: str, arguments: str) -> dict[str, Any]:
    function = {"name": name, "arguments": arguments}
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": function}
