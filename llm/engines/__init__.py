"""llm engines, built per served model through ``ENGINES``: ``llamacpp`` and ``local`` (in-process),
``openai``, ``ollama``."""

from __future__ import annotations

from collections.abc import Callable

from llm.config import Engine, ModelRoute, Settings
from llm.engines.base import ChatEngine
from llm.engines.llamacpp import LlamaCppEngine
from llm.engines.local import LocalEngine
from llm.engines.ollama import OllamaEngine
from llm.engines.openai import OpenAIEngine

ENGINES: dict[Engine, Callable[[ModelRoute, Settings], ChatEngine]] = {
    Engine.llamacpp: LlamaCppEngine,
    Engine.local: LocalEngine,
    Engine.openai: OpenAIEngine,
    Engine.ollama: OllamaEngine,
}
