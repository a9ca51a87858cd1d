"""tts: the synthesizer over its engine, served by the Flask blueprint of ``tts.routes``."""

from __future__ import annotations

from flask import Flask
from prometheus_client import Counter

from services.flask_app import create_flask_app
from tts.config import Settings
from tts.engines import ENGINES
from tts.routes import EXTENSION, blueprint
from tts.synthesis import Synthesizer


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    synthesizer = Synthesizer(settings, ENGINES[settings.engine])
    app = create_flask_app(settings, name="tts", health=synthesizer.health)
    sentences_total = Counter(
        "lingxi_tts_sentences_total",
        "Sentences synthesised.",
        registry=app.extensions["lingxi"]["metrics"].registry,
    )
    synthesizer.on_sentence = sentences_total.inc
    app.extensions[EXTENSION] = synthesizer
    app.register_blueprint(blueprint)
    synthesizer.start()
    return app
