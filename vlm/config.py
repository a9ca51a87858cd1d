"""vlm settings: environment variables prefixed ``VLM_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VLM_", env_file=".env", extra="ignore")

    port: int = Field(7208, description="TCP port of the vlm service.")
