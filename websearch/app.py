"""websearch routes. Its engine arrives with the websearch issue; until then /health says so."""

from fastapi import FastAPI

from services.app import create_app as create_service_app
from services.health import not_configured
from websearch.config import Settings

NOT_BUILT = "no websearch engine is built into this version of lingxi yet"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(settings, name="websearch", health=not_configured(NOT_BUILT, service="websearch-api"))
