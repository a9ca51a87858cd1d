"""embedding settings: environment variables prefixed ``EMBEDDING_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_", env_file=".env", extra="ignore")

    port: int = Field(7202, description="TCP port of the embedding service.")
