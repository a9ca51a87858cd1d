"""websearch settings: environment variables prefixed ``WEBSEARCH_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBSEARCH_", env_file=".env", extra="ignore")

    port: int = Field(5080, description="TCP port of the websearch service.")
