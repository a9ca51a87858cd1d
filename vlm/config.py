"""vlm settings: environment variables prefixed ``VLM_`` (or lines in ``.env``)."""

from __future__ import annotations

import enum

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings

DEFAULT_PROMPT = "Describe this image in detail."


class Engine(str, enum.Enum):
    none = "none"
    transformers = "transformers"
    openai = "openai"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VLM_", env_file=".env", extra="ignore")

    port: int = Field(7208, description="TCP port of the vlm service.")
    engine: Engine = Field(
        Engine.none,
        description="'transformers' (a Qwen-VL model in-process, VLM_MODEL_PATH), 'openai' (an OpenAI-compatible "
        "vision upstream such as vLLM, VLM_UPSTREAM_URL) or 'none' (no vision model: /health answers 503).",
    )

    # transformers engine
    model_path: str | None = Field(
        None, description="Local directory of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model (transformers engine)."
    )
    model_name: str | None = Field(
        None, description="Name the transformers engine answers to (default: the model directory's name)."
    )
    device: str = Field("auto", description="'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'.")
    dtype: str = Field(
        "auto", description="'auto' (bfloat16 on CUDA, float32 on CPU), 'bfloat16', 'float16', 'float32'."
    )
    queue_size: int = Field(
        16, description="Requests allowed to wait for the transformers engine's one generation thread; beyond: 429."
    )

    # openai engine
    upstream_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible vision API, e.g. http://127.0.0.1:8001/v1 (openai engine)."
    )
    upstream_model: str | None = Field(
        None, description="Model name sent to the upstream (e.g. Qwen/Qwen2.5-VL-7B-Instruct)."
    )
    upstream_api_key: str | None = Field(None, description="Bearer key for the upstream, if it needs one.")
    upstream_ca_bundle: str | None = Field(
        None,
        description="PEM file of a private CA for the upstream's certificate (unset: SSL_CERT_FILE or public roots).",
    )
    upstream_timeout_s: float = Field(120.0, description="Deadline for one upstream call (504 beyond it).")

    # requests
    default_prompt: str = Field(DEFAULT_PROMPT, description="Prompt used when a request has no 'text'.")
    max_tokens: int = Field(512, description="Tokens generated when a request has no 'max_tokens'.")
    max_tokens_limit: int = Field(4096, description="Largest 'max_tokens' a request may ask for.")
    max_text_chars: int = Field(8000, description="Longest prompt accepted.")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest image accepted, in bytes (413 above it).")
    max_image_pixels: int = Field(40_000_000, description="Largest image accepted, in pixels (413 above it).")
    image_max_side: int = Field(1280, description="Images are downscaled so that their longer side is at most this.")
