"""A session's conversation: its items in order, and the chat messages the llm is asked with."""

from __future__ import annotations

from typing import Any

from llm.realtime.events import EventError, message_item, new_id

USER_CONTENT = ("input_text", "input_audio")


class Conversation:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}  # id → item, in conversation order

    @property
    def last_id(self) -> str | None:
        return next(reversed(self.items), None)

    def get(self, item_id: Any) -> dict[str, Any]:
        if not isinstance(item_id, str) or item_id not in self.items:
            raise EventError(f"item {item_id!r} is not in the conversation", code="item_not_found", param="item_id")
        return self.items[item_id]

    def add(self, item: dict[str, Any], previous_item_id: str | None = None) -> str | None:
        """Add after ``previous_item_id`` (the end when None); return the id of the item before it."""
        if previous_item_id is None or previous_item_id == self.last_id:
            before = self.last_id
            self.items[item["id"]] = item
            return before
        self.get(previous_item_id)
        ordered = list(self.items.items())
        at = next(i for i, (key, _) in enumerate(ordered) if key == previous_item_id) + 1
        ordered.insert(at, (item["id"], item))
        self.items = dict(ordered)
        return previous_item_id

    def delete(self, item_id: Any) -> None:
        self.get(item_id)
        del self.items[item_id]

    def messages(self, instructions: str) -> list[dict[str, Any]]:
        """The conversation as chat messages: calls and their outputs as OpenAI's tool_calls and tool turns."""
        messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
        for item in self.items.values():
            kind = item.get("type")
            if kind == "message":
                text = item_text(item)
                if text:
                    messages.append({"role": item["role"], "content": text})
            elif kind == "function_call":
                call = {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
                last = messages[-1] if messages else {}
                if last.get("role") == "assistant" and last.get("tool_calls") is not None:
                    last["tool_calls"].append(call)
                else:
                    messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        return messages


def item_text(item: dict[str, Any]) -> str:
    parts = []
    for part in item.get("content") or []:
        text = part.get("text") if part.get("type") in ("input_text", "output_text") else part.get("transcript")
        if isinstance(text, str) and text:
            parts.append(text)
    return "\n".join(parts)


def client_item(value: Any) -> dict[str, Any]:
    """An item a client creates (``conversation.item.create``): a message or a function call's output."""
    if not isinstance(value, dict):
        raise EventError("item must be an object", param="item")
    kind = value.get("type")
    item_id = value.get("id") if isinstance(value.get("id"), str) and value.get("id") else new_id("item")
    if kind == "function_call_output":
        if not isinstance(value.get("call_id"), str) or not isinstance(value.get("output"), str):
            raise EventError("a function_call_output item needs call_id and output (strings)", param="item")
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call_output",
            "status": "completed",
            "call_id": value["call_id"],
            "output": value["output"],
        }
    if kind == "function_call":
        if not all(isinstance(value.get(key), str) for key in ("call_id", "name", "arguments")):
            raise EventError("a function_call item needs call_id, name and arguments (strings)", param="item")
        return {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "completed",
            **{key: value[key] for key in ("call_id", "name", "arguments")},
        }
    if kind != "message":
        raise EventError("item.type must be 'message', 'function_call' or 'function_call_output'", param="item.type")
    role = value.get("role")
    if role not in ("user", "assistant", "system"):
        raise EventError("item.role must be 'user', 'assistant' or 'system'", param="item.role")
    content = value.get("content")
    if not isinstance(content, list) or not content:
        raise EventError("item.content must be a non-empty list", param="item.content")
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "text", "output_text") and isinstance(part.get("text"), str):
            text_type = "input_text" if role in ("user", "system") else "output_text"
            parts.append({"type": text_type, "text": part["text"]})
        elif kind == "input_audio" and role == "user" and isinstance(part.get("transcript"), str):
            parts.append({"type": "input_audio", "transcript": part["transcript"]})
        else:
            raise EventError(
                "content parts are {type: 'input_text', text} ('output_text' for the assistant; 'input_audio' "
                "with its transcript: audio itself goes through input_audio_buffer.append)",
                param=f"item.content[{i}]",
            )
    return message_item(role, parts, item_id=item_id)
