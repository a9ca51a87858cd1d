"""vlm engines: one Protocol (``base.py``), one file per engine; ``ENGINES`` picks one by setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from services.errors import NotConfigured
from vlm.config import Engine, Settings
from vlm.engines.base import VisionEngine
from vlm.engines.openai import OpenAIEngine
from vlm.engines.transformers import TransformersEngine

HOW_TO_CONFIGURE = (
    "no vision model is configured. Set VLM_ENGINE=openai with VLM_UPSTREAM_URL (e.g. http://127.0.0.1:8001/v1, "
    "a vLLM or SGLang server running a Qwen-VL model) and VLM_UPSTREAM_MODEL, or VLM_ENGINE=transformers with "
    "VLM_MODEL_PATH=/path/to/Qwen2.5-VL-7B-Instruct to run it in-process; see docs/vlm.md"
)


def no_engine(settings: Settings) -> NoReturn:
    """VLM_ENGINE=none, the default (no vision model exists offline): the service runs and says what to set."""
    raise NotConfigured(HOW_TO_CONFIGURE)


ENGINES: dict[Engine, Callable[[Settings], VisionEngine]] = {
    Engine.none: no_engine,
    Engine.transformers: TransformersEngine,
    Engine.openai: OpenAIEngine,
}


def engine_label(settings: Settings) -> str:
    """How /health and errors name the engine: the in-process one by the directory it loads."""
    if settings.engine is Engine.transformers:
        return f"the model in VLM_MODEL_PATH ({settings.model_path})"
    return f"the {settings.engine.value} engine"
