"""The one engine Protocol and what flows through it.

Every engine speaks OpenAI's wire format internally: ``complete`` returns a ``chat.completion``
object and ``open_stream`` yields ``chat.completion.chunk`` objects. The routes turn those into the
seed's, OpenAI's and Ollama's response shapes, so an upstream's extra fields (tool calls,
reasoning, logprobs) survive the trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.engine import Engine
from services.health import Health

Completion = dict[str, Any]  # an OpenAI chat.completion object
Chunk = dict[str, Any]  # an OpenAI chat.completion.chunk object

# The sampling parameters a chat request may set, by the names both APIs (OpenAI, Ollama options) use.
SAMPLING_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "repeat_penalty",
    "repeat_last_n",
    "frequency_penalty",
    "presence_penalty",
)


@dataclass
class ChatRequest:
    model: str  # the name the engine knows the model by (the upstream model, or the local model)
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, stop, seed, tools, ...
    raw_prompt: str | None = None  # Ollama's generate with raw=true: a prompt sent without a chat template
    # llamacpp: start from the longest prefix of the prompt that an earlier such request left in the KV
    # cache (llama.cpp's cache_prompt): a conversation's next turn reads only its new tokens, but its
    # logits are not bit-identical to a fresh decode's, so requests that must repeat exactly leave it off
    cache_prompt: bool = False


class ChatEngine(Engine, Protocol):
    description: str  # says where the model lives, for errors, logs and /health

    async def health(self) -> Health:
        """Readiness once started (a remote engine asks its upstream)."""
        ...

    def details(self) -> dict[str, Any]:
        """What Ollama's tags/show report: format, family, parameter_size, quantization_level, template."""
        ...

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Check everything that can fail before the first byte, then return the chunk iterator.

        Closing the iterator (the client went away) stops the generation or the upstream request.
        """
        ...
