"""vlm engines: one Protocol (``base.py``), one file per engine; ``ENGINES`` picks one by setting."""

from __future__ import annotations

from collections.abc import Callable

from vlm.config import Engine, Settings
from vlm.engines.base import VisionEngine
from vlm.engines.none import NotConfiguredEngine
from vlm.engines.openai import OpenAIEngine
from vlm.engines.transformers import TransformersEngine

ENGINES: dict[Engine, Callable[[Settings], VisionEngine]] = {
    Engine.transformers: TransformersEngine,
    Engine.openai: OpenAIEngine,
}

REQUIRED_SETTINGS = {
    Engine.transformers: ("model_path",),
    Engine.openai: ("upstream_url", "upstream_model"),
}


def build_engine(settings: Settings) -> VisionEngine:
    """The configured engine, or one that answers 503 and says which settings are missing."""
    if settings.engine is Engine.none:
        return NotConfiguredEngine()
    missing = [f"VLM_{name.upper()}" for name in REQUIRED_SETTINGS[settings.engine] if not getattr(settings, name)]
    if missing:
        return NotConfiguredEngine(f"VLM_ENGINE={settings.engine.value} needs {' and '.join(missing)}; see docs/vlm.md")
    return ENGINES[settings.engine](settings)
