"""opro settings: environment variables prefixed ``OPRO_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPRO_", env_file=".env", extra="ignore")

    port: int = Field(8010, description="TCP port of the opro service.")
