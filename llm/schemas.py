"""Request bodies of the seed, OpenAI and Ollama APIs (validated before anything is generated)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm.engines.base import SAMPLING_PARAMS
from llm.structured import response_format_of

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, tool_call_id, images pass through

    role: Role
    content: str | list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def content_needed(self) -> Message:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role!r} message needs content")
        return self


Stop = str | list[str] | None


class SeedChatRequest(BaseModel):
    """``POST /api/chat`` and ``/api/chat/stream``."""

    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: Stop = None
    format: Any = None  # as Ollama's: "json" or a JSON schema the answer must follow
    web_search: bool = False  # answer from a web search, citing its results as [n] ("sources" in the answer)

    def params(self) -> dict[str, Any]:
        fields = ("temperature", "top_p", "max_tokens", "stop")
        params = {name: getattr(self, name) for name in fields if getattr(self, name) is not None}
        response_format = response_format_of(self.format)
        if response_format is not None:
            params["response_format"] = response_format
        return params


OPENAI_PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "seed")


class OpenAIChatRequest(SeedChatRequest):
    """``POST /v1/chat/completions``: the seed's fields plus every other OpenAI parameter, passed on."""

    model_config = ConfigDict(extra="allow")

    stream: bool = False
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=8)
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    top_k: int | None = Field(None, ge=1)  # vLLM's and llama.cpp's extension
    repetition_penalty: float | None = Field(None, gt=0, le=10)  # vLLM's name for llama.cpp's repeat_penalty

    def params(self) -> dict[str, Any]:
        params = dict(self.model_extra or {})
        for name in (*OPENAI_PARAMS, "frequency_penalty", "presence_penalty", "top_k", "repetition_penalty"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        return params


SAMPLING_OPTIONS = (*SAMPLING_PARAMS, "seed", "stop")


class OllamaOptions(BaseModel):
    model_config = ConfigDict(extra="allow")  # num_ctx, mirostat, ... are accepted and ignored

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    repeat_penalty: float | None = Field(None, gt=0, le=10)
    repeat_last_n: int | None = Field(None, ge=-1)  # -1: the whole context, as Ollama
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    num_predict: int | None = None
    seed: int | None = None
    stop: Stop = None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name in SAMPLING_OPTIONS:
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        if self.num_predict is not None and self.num_predict > 0:
            params["max_tokens"] = self.num_predict
        return params


class OllamaChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[Message] = Field(default_factory=list)
    stream: bool = True
    options: OllamaOptions = Field(default_factory=OllamaOptions)
    format: Any = None
    tools: list[dict[str, Any]] | None = None
    keep_alive: Any = None
    think: Any = None


class OllamaGenerateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str = ""
    system: str | None = None
    stream: bool = True
    raw: bool = False
    options: OllamaOptions = Field(default_factory=OllamaOptions)
    format: Any = None
    keep_alive: Any = None


class OllamaModelRequest(BaseModel):
    """``show``, ``pull``, ``push``, ``delete``: a model, named ``model`` (or ``name`` by older clients)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    name: str | None = None
    stream: bool = True

    @property
    def named(self) -> str | None:
        return self.model or self.name


class OllamaCopyRequest(BaseModel):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)


class OllamaEmbedRequest(BaseModel):
    """``POST /api/embed``: ``input`` is one text or a list of texts."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: list[str] = Field(default_factory=list)
    truncate: bool | None = None
    dimensions: int | None = Field(None, ge=0)  # 0: the model's own
    options: dict[str, Any] | None = None
    keep_alive: Any = None

    @field_validator("input", mode="before")
    @classmethod
    def texts(cls, value: Any) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise ValueError("invalid input type: send a string or a list of strings")


class OllamaEmbeddingsRequest(BaseModel):
    """``POST /api/embeddings``, the legacy one: a single ``prompt``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: Any = None
