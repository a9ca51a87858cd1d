"""asr settings: environment variables prefixed ``ASR_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_", env_file=".env", extra="ignore")

    port: int = Field(7205, description="TCP port of the asr service.")
