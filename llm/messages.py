"""Chat messages as the in-process engines read them: roles, text, and stop strings."""

from __future__ import annotations

from typing import Any

from services.errors import BadRequest

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOPS = 4


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise BadRequest(f"the local engine reads text only; message part of type {kind!r} is not supported")
        parts.append(str(part.get("text", "")))
    return "".join(parts)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    converted = []
    for message in messages:
        role = ROLES.get(str(message.get("role")))
        if role is None:
            raise BadRequest(f"the local engine's chat template has no {message.get('role')!r} role")
        converted.append({"role": role, "content": text_of(message)})
    return converted


def stop_strings(params: dict[str, Any]) -> list[str]:
    stops = params.get("stop") or []
    stops = [stops] if isinstance(stops, str) else list(stops)
    if len(stops) > MAX_STOPS:
        raise BadRequest(f"at most {MAX_STOPS} stop strings")
    return stops


class StopScanner:
    """Cuts the text at the first stop string, holding back a tail that may be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.hold = max((len(stop) for stop in self.stops), default=1) - 1
        self.buffer = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.buffer += text
        hits = [self.buffer.find(stop) for stop in self.stops if stop in self.buffer]
        if hits:
            out, self.buffer = self.buffer[: min(hits)], ""
            return out, True
        cut = len(self.buffer) - self.hold
        if cut <= 0:
            return "", False
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out
