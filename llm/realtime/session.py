"""A realtime session's settings (``session.update`` in the GA and the beta shape) and its conversation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from llm import web_answer
from llm.realtime.events import EventError, new_id
from llm.realtime.formats import BETA_FORMATS, audio_format, beta_format, format_object, noise_reduction
from llm.realtime.formats import RATE as RATE  # the session's audio rate, for the modules that read it here
from services.errors import BadRequest

VAD_DEFAULTS = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}
VAD_RANGES = {"threshold": (0.0, 1.0), "prefix_padding_ms": (0, 5000), "silence_duration_ms": (50, 10_000)}
TOOL_CHOICES = ("auto", "none", "required")


@dataclass
class SessionConfig:
    model: str  # the name the client connected with (its answers come from ``route``)
    route: str  # the llm model that answers
    intent: str = "realtime"  # or "transcription": the heard speech is transcribed, nothing answers
    modalities: list[str] = field(default_factory=lambda: ["audio"])
    instructions: str = ""
    voice: str = "alloy"
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: dict(VAD_DEFAULTS))
    transcription: dict[str, Any] = field(default_factory=lambda: {"model": "whisper-1"})
    tools: list[dict[str, Any]] = field(default_factory=list)  # GA's flat {type, name, description, parameters}
    tool_choice: Any = "auto"
    max_output_tokens: int | str = "inf"
    temperature: float | None = None
    input_format: str = "audio/pcm"
    output_format: str = "audio/pcm"
    noise_reduction: str | None = None  # accepted and reported; the audio is not filtered
    web_search_options: dict[str, Any] | None = None  # answers from the web (see ``llm.realtime.web``)
    id: str = field(default_factory=lambda: new_id("sess"))

    # --- reading session.update -----------------------------------------------------------
    def updated(self, body: Any, *, beta: bool) -> SessionConfig:
        """A copy with ``body`` (the event's ``session``) applied; BadRequest names the faulty field."""
        if not isinstance(body, dict):
            raise bad("session must be an object", "session")
        new = replace(self, tools=list(self.tools))
        (new.read_beta if beta else new.read_ga)(body)
        new.read_common(body)
        return new

    def read_ga(self, body: dict[str, Any]) -> None:
        kind = body.get("type", self.intent)
        if kind not in ("realtime", "transcription"):
            raise bad("session.type must be 'realtime' or 'transcription'", "session.type")
        self.intent = kind
        if "output_modalities" in body:
            self.modalities = modalities(body["output_modalities"], "session.output_modalities")
        audio = obj(body.get("audio"), "session.audio")
        heard, spoken = obj(audio.get("input"), "session.audio.input"), obj(audio.get("output"), "session.audio.output")
        if heard.get("format") is not None:
            self.input_format = audio_format(heard["format"], "session.audio.input.format")
        if spoken.get("format") is not None:
            self.output_format = audio_format(spoken["format"], "session.audio.output.format")
        if "noise_reduction" in heard:
            self.noise_reduction = noise_reduction(heard["noise_reduction"], "session.audio.input.noise_reduction")
        if "turn_detection" in heard:
            self.turn_detection = turn_detection(heard["turn_detection"], "session.audio.input.turn_detection")
        if "transcription" in heard:
            self.transcription = transcription(heard["transcription"], "session.audio.input.transcription")
        if "voice" in spoken:
            self.voice = voice(spoken["voice"], "session.audio.output.voice")
        if "max_output_tokens" in body:
            self.max_output_tokens = token_limit(body["max_output_tokens"], "session.max_output_tokens")

    def read_beta(self, body: dict[str, Any]) -> None:
        if "modalities" in body:
            chosen = modalities(body["modalities"], "session.modalities")
            self.modalities = ["audio"] if "audio" in chosen else ["text"]
        for name in ("input_audio_format", "output_audio_format"):
            if body.get(name) is not None and body[name] not in BETA_FORMATS:
                raise bad(f"{name} must be 'pcm16', 'g711_ulaw' or 'g711_alaw'", f"session.{name}")
        if body.get("input_audio_format") is not None:
            self.input_format = BETA_FORMATS[body["input_audio_format"]]
        if body.get("output_audio_format") is not None:
            self.output_format = BETA_FORMATS[body["output_audio_format"]]
        if "input_audio_noise_reduction" in body:
            where = "session.input_audio_noise_reduction"
            self.noise_reduction = noise_reduction(body["input_audio_noise_reduction"], where)
        if "turn_detection" in body:
            self.turn_detection = turn_detection(body["turn_detection"], "session.turn_detection")
        if "input_audio_transcription" in body:
            self.transcription = transcription(body["input_audio_transcription"], "session.input_audio_transcription")
        if "voice" in body:
            self.voice = voice(body["voice"], "session.voice")
        if "max_response_output_tokens" in body:
            limit = token_limit(body["max_response_output_tokens"], "session.max_response_output_tokens")
            self.max_output_tokens = limit

    def read_common(self, body: dict[str, Any]) -> None:
        if "instructions" in body:
            if not isinstance(body["instructions"], str):
                raise bad("instructions must be a string", "session.instructions")
            self.instructions = body["instructions"]
        if "tools" in body:
            self.tools = tools_of(body["tools"])
        if "tool_choice" in body:
            self.tool_choice = tool_choice(body["tool_choice"], self.tools)
        if "web_search_options" in body:
            options = body["web_search_options"]
            try:
                web_answer.source_count(options if options is not None else {})
            except BadRequest as exc:
                raise bad(exc.message, "session.web_search_options") from None
            self.web_search_options = options
        if "temperature" in body:
            value = body["temperature"]
            if not isinstance(value, (int, float)) or not 0 <= value <= 2:
                raise bad("temperature must be a number between 0 and 2", "session.temperature")
            self.temperature = float(value)

    # --- the session object a client reads --------------------------------------------------
    def ga(self) -> dict[str, Any]:
        heard = {
            "format": format_object(self.input_format),
            "transcription": self.transcription,
            "noise_reduction": {"type": self.noise_reduction} if self.noise_reduction else None,
            "turn_detection": self.turn_detection,
        }
        if self.intent == "transcription":
            return {
                "type": "transcription",
                "id": self.id,
                "object": "realtime.transcription_session",
                "audio": {"input": heard},
                "include": [],
            }
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": self.modalities,
            "instructions": self.instructions,
            "audio": {
                "input": heard,
                "output": {"format": format_object(self.output_format), "voice": self.voice, "speed": 1.0},
            },
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            **({"web_search_options": self.web_search_options} if self.web_search_options is not None else {}),
            "tracing": None,
            "prompt": None,
        }

    def beta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "realtime.session",
            "model": self.model,
            "modalities": ["text", "audio"] if "audio" in self.modalities else ["text"],
            "instructions": self.instructions,
            "voice": self.voice,
            "input_audio_format": beta_format(self.input_format),
            "output_audio_format": beta_format(self.output_format),
            "input_audio_noise_reduction": {"type": self.noise_reduction} if self.noise_reduction else None,
            "input_audio_transcription": self.transcription,
            "turn_detection": self.turn_detection,
            "tools": self.tools,
            "tool_choice": self.tool_choice if isinstance(self.tool_choice, str) else "auto",
            "temperature": self.temperature if self.temperature is not None else 0.8,
            "max_response_output_tokens": self.max_output_tokens,
            **({"web_search_options": self.web_search_options} if self.web_search_options is not None else {}),
        }

    # --- what the llm is asked ---------------------------------------------------------------
    def chat_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.tools and self.tool_choice != "none":
            params["tools"] = [
                {
                    "type": "function",
                    "function": {k: tool[k] for k in ("name", "description", "parameters") if k in tool},
                }
                for tool in self.tools
            ]
            choice = self.tool_choice
            params["tool_choice"] = (
                {"type": "function", "function": {"name": choice["name"]}} if isinstance(choice, dict) else choice
            )
        if isinstance(self.max_output_tokens, int):
            params["max_tokens"] = self.max_output_tokens
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params


def bad(message: str, param: str) -> EventError:
    return EventError(message, param=param)


def obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"{where} must be an object", where)
    return value


def modalities(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or any(v not in ("text", "audio") for v in value):
        raise bad(f'{where} must be ["audio"] or ["text"]', where)
    return ["audio"] if "audio" in value else ["text"]


def voice(value: Any, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{where} must be a voice name (alloy, echo, marin, ... or a tts style)", where)
    return value.strip()


def token_limit(value: Any, where: str) -> int | str:
    if value == "inf" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096):
        return value
    raise bad(f"{where} must be 'inf' or an integer from 1 to 4096", where)


def turn_detection(value: Any, where: str) -> dict[str, Any] | None:
    """None (the client commits) or server VAD; ``semantic_vad`` is served by the same VAD."""
    if value is None:
        return None
    value = obj(value, where)
    if value.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
        raise bad(f"{where}.type must be 'server_vad' or 'semantic_vad'", f"{where}.type")
    settings = {**VAD_DEFAULTS, "type": value.get("type", "server_vad")}
    for name, (low, high) in VAD_RANGES.items():
        if value.get(name) is not None:
            number = value[name]
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not low <= number <= high:
                raise bad(f"{where}.{name} must be a number from {low} to {high}", f"{where}.{name}")
            settings[name] = number
    for name in ("create_response", "interrupt_response"):
        if value.get(name) is not None:
            if not isinstance(value[name], bool):
                raise bad(f"{where}.{name} must be true or false", f"{where}.{name}")
            settings[name] = value[name]
    return settings


def transcription(value: Any, where: str) -> dict[str, Any]:
    value = obj(value, where)
    language = value.get("language")
    if language is not None and not isinstance(language, str):
        raise bad(f"{where}.language must be a language code such as 'en' or 'zh'", f"{where}.language")
    return {"model": str(value.get("model") or "whisper-1"), "language": language, "prompt": value.get("prompt")}


def tools_of(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad("tools must be a list of {type: 'function', name, description, parameters}", "session.tools")
    tools = []
    for i, tool in enumerate(value):
        if (
            not isinstance(tool, dict)
            or tool.get("type", "function") != "function"
            or not isinstance(tool.get("name"), str)
        ):
            raise bad("each tool must be {type: 'function', name, description, parameters}", f"session.tools[{i}]")
        tools.append(
            {
                "type": "function",
                "name": tool["name"],
                "description": str(tool.get("description") or ""),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return tools


def tool_choice(value: Any, tools: list[dict[str, Any]]) -> Any:
    if value in TOOL_CHOICES:
        return value
    name = value.get("name") or (value.get("function") or {}).get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or name not in {tool["name"] for tool in tools}:
        raise bad(
            "tool_choice must be 'auto', 'none', 'required' or {type: 'function', name} of a tool",
            "session.tool_choice",
        )
    return {"type": "function", "name": name}
