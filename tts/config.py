"""tts settings: environment variables prefixed ``TTS_`` (or lines in ``.env``)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.settings import ServiceSettings, split_csv
from tts.voices import DEFAULT_VOICE_MAP, parse_voice_map


class Engine(str, enum.Enum):
    espeak = "espeak"
    indextts = "indextts"
    upstream = "upstream"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", env_file=".env", extra="ignore")

    port: int = Field(7206, description="TCP port of the tts service.")
    threads: int = Field(8, description="Worker threads of the WSGI server.")

    engine: Engine = Field(
        Engine.espeak,
        description="espeak (espeak-ng, embedded default), indextts (IndexTTS2, GPU) or upstream "
        "(an OpenAI-compatible /v1/audio/speech).",
    )
    default_style: str = Field("style1", description="Style used when a request names none.")
    openai_voices: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_VOICE_MAP),
        description="OpenAI voice names accepted as voice/style, each onto a style: alloy=style1,echo=male,... "
        "(replaces the whole default map; a style the engine lacks falls back to default_style).",
    )

    # text and prompt limits
    max_text_chars: int = Field(5000, description="Most characters of text in one request (413 above it).")
    max_sentence_chars: int = Field(
        200, description="Sentences longer than this are cut further at commas, then at this length."
    )
    sentence_pause_ms: int = Field(200, description="Silence put between synthesised sentences.")
    prompt_audio_max_bytes: int = Field(10 * 1024 * 1024, description="Largest prompt_audio upload (413).")
    prompt_audio_max_seconds: float = Field(60.0, description="Longest prompt_audio recording (413).")

    # engine queue: IndexTTS2 is not safe for concurrent calls
    queue_size: int = Field(
        8, description="Requests allowed to wait for the engine; beyond it the service answers 429."
    )

    # espeak
    espeak_binary: str = Field("espeak-ng", description="The espeak-ng executable.")

    # indextts
    indextts_dir: Path | None = Field(None, description="Local checkout of github.com/index-tts/index-tts.")
    checkpoints_dir: Path | None = Field(
        None,
        description="IndexTTS2 checkpoints (config.yaml, gpt.pth, s2mel.pth, ...); default <indextts_dir>/checkpoints.",
    )
    styles_dir: Path | None = Field(
        None,
        description="Reference audios named <style>.wav for indextts styles; style1/style2 fall back to "
        "the checkout's examples/voice_01.wav and voice_02.wav.",
    )
    indextts_fp16: bool = Field(True, description="Run IndexTTS2 in half precision on a GPU.")
    indextts_device: str | None = Field(None, description="torch device for IndexTTS2 (default: cuda:0 if present).")

    # upstream
    upstream_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible API, e.g. http://host:8000/v1."
    )
    upstream_model: str = Field("tts-1", description="Model name sent to the upstream.")
    upstream_api_key: str | None = Field(None, description="Bearer key for the upstream, if it needs one.")
    upstream_voices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["style1", "style2"], description="Voices the upstream offers (the styles)."
    )
    upstream_ca_bundle: str | None = Field(
        None,
        description="PEM file of a private CA for the upstream's certificate (unset: SSL_CERT_FILE or public roots).",
    )
    upstream_timeout_s: float = Field(120.0, description="Deadline for one upstream synthesis.")

    _split_voices = field_validator("upstream_voices", mode="before")(split_csv)
    _parse_openai_voices = field_validator("openai_voices", mode="before")(parse_voice_map)
