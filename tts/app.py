"""tts routes (Flask). Its engine arrives with the tts issue; until then /health says so."""

from flask import Flask

from services.flask_app import create_flask_app
from services.health import not_configured
from tts.config import Settings

NOT_BUILT = "no tts engine is built into this version of lingxi yet"


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    return create_flask_app(settings, name="tts", health=not_configured(NOT_BUILT))
