"""Build and read OpenAI ``chat.completion`` / ``chat.completion.chunk`` objects."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    model: str, content: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens),
        "system_fingerprint": None,
    }


def chunk(
    chunk_id: str,
    model: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    usage_: dict[str, int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage_ is not None:
        body["usage"] = usage_
    return body


def first_choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def message_text(body: dict[str, Any]) -> str:
    """The answer of a chat.completion, without reasoning (``reasoning_content`` or a ``<think>`` block)."""
    message = first_choice(body).get("message") or {}
    content = message.get("content")
    return strip_think(content) if isinstance(content, str) else ""


def delta_text(body: dict[str, Any]) -> str:
    delta = first_choice(body).get("delta") or {}
    content = delta.get("content")
    return content if isinstance(content, str) else ""


def merge_tool_calls(calls: dict[int, dict[str, Any]], chunk: dict[str, Any]) -> None:
    """Add a chunk's ``delta.tool_calls`` (which may arrive in pieces) to ``calls``, keyed by index."""
    delta = first_choice(chunk).get("delta") or {}
    for part in delta.get("tool_calls") or []:
        empty = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        call = calls.setdefault(int(part.get("index", len(calls))), empty)
        call["id"] = part.get("id") or call["id"]
        function = part.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        arguments = function.get("arguments") or ""
        call["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)


def strip_think(text: str) -> str:
    """Drop a leading ``<think>...</think>`` block (thinking models served without a reasoning parser)."""
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        end = stripped.find(THINK_CLOSE)
        return "" if end < 0 else stripped[end + len(THINK_CLOSE) :].lstrip()
    return text


class ThinkFilter:
    """The streaming twin of ``strip_think``: swallows a leading ``<think>`` block across deltas."""

    def __init__(self) -> None:
        self.buffer = ""
        self.state = "start"  # start → (thinking →) answer

    def feed(self, delta: str) -> str:
        if self.state == "answer":
            return delta
        self.buffer += delta
        if self.state == "start":
            head = self.buffer.lstrip()
            if not head or (len(head) < len(THINK_OPEN) and THINK_OPEN.startswith(head)):
                return ""  # could still become "<think>"
            if not head.startswith(THINK_OPEN):
                self.state, out, self.buffer = "answer", self.buffer, ""
                return out
            self.state = "thinking"
        end = self.buffer.find(THINK_CLOSE)
        if end < 0:
            return ""
        out = self.buffer[end + len(THINK_CLOSE) :].lstrip()
        self.state, self.buffer = "answer", ""
        return out
