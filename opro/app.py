"""opro routes. Its engine arrives with the opro issue; until then /health says so."""

from fastapi import FastAPI

from opro.config import Settings
from services.app import create_app as create_service_app
from services.health import not_configured

NOT_BUILT = "no opro engine is built into this version of lingxi yet"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(settings, name="opro", health=not_configured(NOT_BUILT))
