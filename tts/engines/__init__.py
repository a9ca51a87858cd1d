"""tts engines, chosen by ``TTS_ENGINE`` through one dict."""

from __future__ import annotations

from collections.abc import Callable

from tts.config import Engine, Settings
from tts.engines.base import TTSEngine
from tts.engines.espeak import EspeakEngine
from tts.engines.indextts import IndexTTSEngine
from tts.engines.upstream import UpstreamEngine

ENGINES: dict[Engine, Callable[[Settings], TTSEngine]] = {
    Engine.espeak: EspeakEngine,
    Engine.indextts: IndexTTSEngine,
    Engine.upstream: UpstreamEngine,
}
