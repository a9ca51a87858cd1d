"""tts settings: environment variables prefixed ``TTS_`` (or lines in ``.env``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", env_file=".env", extra="ignore")

    port: int = Field(7206, description="TCP port of the tts service.")

    threads: int = Field(8, description="Worker threads of the WSGI server.")
