"""The Realtime API's server events, built in the GA shape and renamed for beta clients.

Items, responses and events are built once, in the GA shape; ``beta_event`` rewrites one for a
client that asked for the beta protocol (``OpenAI-Beta: realtime=v1``): its event names
(``response.text.delta``, ``response.audio.delta``, ``conversation.item.created``), content types
(``text``, ``audio``) and ``modalities``.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.errors import BadRequest

Event = dict[str, Any]

BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}
BETA_ONLY_GA = frozenset({"conversation.item.done"})  # no beta twin: not sent to beta clients
BETA_CONTENT = {"output_text": "text", "output_audio": "audio"}
BETA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}


class EventError(BadRequest):
    """A client event that cannot be served: answered by an ``error`` event; the session goes on."""

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def error_event(
    message: str,
    *,
    code: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    client_event_id: str | None = None,
) -> Event:
    """OpenAI's error event; ``client_event_id``: the client event it answers, when it had one."""
    error = {"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id}
    return {"type": "error", "error": error}


def message_item(
    role: str, content: list[dict[str, Any]], *, status: str = "completed", item_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": item_id or new_id("item"),
        "object": "realtime.item",
        "type": "message",
        "role": role,
        "status": status,
        "content": content,
    }


def function_call_item(call_id: str, name: str, arguments: str, *, status: str = "completed") -> dict[str, Any]:
    return {
        "id": new_id("item"),
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    response_id: str,
    status: str,
    modalities: list[str],
    output: list[dict[str, Any]],
    voice: str,
    status_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": "conv_default",
        "output_modalities": modalities,
        "max_output_tokens": "inf",
        "metadata": None,
        "usage": None,
    }
    if "audio" in modalities:
        body["audio"] = {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice}}
    return body


def usage(counts: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's realtime ``usage`` from the engine's chat counts; None when the engine sent none. The
    model reads and writes text only (asr and tts carry the audio): its tokens are all text tokens."""
    if not counts or not isinstance(counts.get("prompt_tokens"), int):
        return None
    read, written = counts["prompt_tokens"], int(counts.get("completion_tokens") or 0)
    cached = (counts.get("prompt_tokens_details") or {}).get("cached_tokens")
    read_details: dict[str, Any] = {"text_tokens": read, "audio_tokens": 0, "image_tokens": 0}
    if isinstance(cached, int):
        read_details |= {"cached_tokens": cached, "cached_tokens_details": {"text_tokens": cached}}
    return {
        "total_tokens": read + written,
        "input_tokens": read,
        "output_tokens": written,
        "input_token_details": read_details,
        "output_token_details": {"text_tokens": written, "audio_tokens": 0},
    }


def without_audio(item: dict[str, Any]) -> dict[str, Any]:
    """An item as ``response.done`` and ``conversation.item.done`` carry it: audio bytes left out."""
    content = item.get("content")
    if not content:
        return item
    return {**item, "content": [{k: v for k, v in part.items() if k != "audio"} for part in content]}


def beta_item(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    if not content:
        return item
    parts = [{**part, "type": BETA_CONTENT.get(part.get("type", ""), part.get("type"))} for part in content]
    return {**item, "content": parts}


def beta_response(response: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in response.items() if k not in ("output_modalities", "audio")}
    body["modalities"] = response["output_modalities"]
    body["output"] = [beta_item(item) for item in response["output"]]
    if "audio" in response["output_modalities"]:
        body["output_audio_format"] = BETA_FORMATS[response["audio"]["output"]["format"]["type"]]
        body["voice"] = response["audio"]["output"]["voice"]
    return body


def beta_event(event: Event) -> Event | None:
    """The event as a beta client expects it; None for a GA event that has no beta twin."""
    kind = event["type"]
    if kind in BETA_ONLY_GA:
        return None
    event = {**event, "type": BETA_NAMES.get(kind, kind)}
    if "item" in event:
        event["item"] = beta_item(event["item"])
    if "response" in event:
        event["response"] = beta_response(event["response"])
    return event
