"""asr engines, chosen by ``ASR_ENGINE`` through one table. Heavy imports happen in ``start()``."""

from __future__ import annotations

from collections.abc import Callable

from asr.config import Engine, Settings
from asr.engines.base import AsrEngine
from asr.engines.sensevoice import SenseVoiceEngine
from asr.engines.upstream import UpstreamEngine
from asr.engines.whisper import WhisperEngine

ENGINES: dict[Engine, Callable[[Settings], AsrEngine]] = {
    Engine.whisper: WhisperEngine,
    Engine.sensevoice: SenseVoiceEngine,
    Engine.upstream: UpstreamEngine,
}
