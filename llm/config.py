"""llm settings: environment variables prefixed ``LLM_`` (or lines in ``.env``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.models.store import models_dir
from services.settings import ServiceSettings, data_path


class Engine(str, enum.Enum):
    llamacpp = "llamacpp"  # in-process llama.cpp on a GGUF file (embedded default: Qwen2.5-Coder-0.5B-Instruct)
    local = "local"  # in-process transformers: an HF model dir (or a GGUF, dequantised), CPU or GPU
    openai = "openai"  # any OpenAI-compatible upstream: vLLM, SGLang, Ollama's /v1, a cloud API
    ollama = "ollama"  # Ollama's native /api/chat


@dataclass(frozen=True)
class ModelRoute:
    """One served model (of ``LLM_MODELS``, or the single one) and where its engine finds it."""

    name: str  # what clients send as "model"
    engine: Engine
    upstream_model: str | None = None  # the name the upstream knows (or the local model path)
    upstream_url: str | None = None
    upstream_api_key: str | None = None
    upstream_ca_bundle: str | None = None
    gguf_file: str | None = None
    aliases: tuple[str, ...] = ()  # other names clients may send for it

    @property
    def engine_model(self) -> str:
        return self.upstream_model or self.name


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", env_file=".env", extra="ignore")

    port: int = Field(7207, description="TCP port of the llm service.")
    max_concurrency: int = Field(
        1024, description="Requests handled at once (streams are long-lived; the local engine has its own queue)."
    )
    max_queue: int = Field(1024, description="Requests allowed to wait for a slot; beyond it: 429.")
    engine: Engine = Field(Engine.llamacpp, description="Engine of the single served model when LLM_MODELS is unset.")
    model_name: str | None = Field(
        None,
        description="Name the single model is served under (default: the upstream model, or the local model's name).",
    )
    models: str | None = Field(
        None,
        description=(
            "Several models at once: JSON {name: {engine, upstream_model, upstream_url, upstream_api_key, "
            "upstream_ca_bundle}} or "
            "'name=engine:upstream_model,...'. Unset: one model from LLM_ENGINE."
        ),
    )
    models_file: str | None = Field(None, description="Path of a JSON file with the same mapping as LLM_MODELS.")
    default_model: str | None = Field(None, description="Served name used when a request names no model.")

    upstream_url: str | None = Field(
        None, description="Base URL of the upstream: http://host:8000/v1 (openai) or http://host:11434 (ollama)."
    )
    upstream_model: str | None = Field(None, description="Model name sent to the upstream.")
    upstream_api_key: str | None = Field(None, description="Bearer key sent to the upstream (cloud APIs).")
    upstream_ca_bundle: str | None = Field(
        None,
        description="PEM file of a private CA for the upstream's certificate (unset: SSL_CERT_FILE or public roots).",
    )
    upstream_connect_timeout_s: float = Field(5.0, description="Connect timeout to the upstream.")
    upstream_timeout_s: float = Field(300.0, description="Read timeout: longest wait for the upstream's next bytes.")
    upstream_max_connections: int = Field(512, description="Pooled connections to each upstream.")
    upstream_retries: int = Field(2, description="Retries when the upstream refuses the connection (nothing sent).")

    model_path: str | None = Field(
        None,
        description="llamacpp: a .gguf file; local: an HF model dir or a .gguf file (default: LLM_EMBEDDED_MODEL).",
    )
    embedded_model: str = Field(
        "qwen2.5-coder:0.5b",
        description="The model installed with lingxi that runs when LLM_MODEL_PATH is unset: qwen2.5-coder:0.5b "
        "(Qwen2.5-Coder-0.5B-Instruct Q4_K_M, Chinese and English) or smollm2:135m (SmolLM2-135M-Instruct, "
        "English only, faster).",
    )
    gguf_file: str | None = Field(None, description="llamacpp/local: GGUF file name inside LLM_MODEL_PATH.")
    device: str = Field("cpu", description="local engine: torch device (cpu, cuda, cuda:1).")
    threads: int | None = Field(
        None,
        ge=1,
        description="llamacpp/local: CPU threads (default: llamacpp picks 1 to all cores before each decode, by how "
        "busy the machine is, since llama.cpp's spinning threads run slower than one on a busy box; local: half "
        "the cores).",
    )
    max_tokens: int = Field(512, description="Default and largest number of tokens the in-process engines generate.")
    max_input_tokens: int = Field(4096, description="llamacpp/local: longest prompt in tokens (400 above it).")
    local_max_queue: int = Field(16, description="local engines: generations waiting for the model; beyond: 429.")
    gguf_convert: Literal["auto", "none", "f16", "q8_0", "q4_0"] = Field(
        "auto",
        description="llamacpp: re-encode the GGUF once (into LLM_MODEL_CACHE_DIR) before serving it; auto: f16 "
        "for the embedded SmolLM2 Q4_1 (its int8-activation kernels change the answers and barely batch), "
        "none for the embedded Qwen and a file of yours.",
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: data_path("models"),
        description="llamacpp: where the embedded Qwen is joined and converted GGUFs kept; "
        "default: $LINGXI_DATA_DIR/models.",
    )
    pulled_models_dir: Path = Field(
        default_factory=models_dir,
        description="Where Ollama's /api/pull puts the GGUF models it pulls (served by the llamacpp engine, again "
        "after a restart); default: LINGXI_MODELS_DIR, else $LINGXI_DATA_DIR/models. Hubs: LINGXI_MODEL_SOURCES.",
    )
    local_parallel: int = Field(
        8, ge=1, le=64, description="llamacpp engine: generations decoded together in one batch (sequence slots)."
    )

    # The sibling services the llm forwards to, so one OpenAI base URL (http://host:7207/v1) and one
    # Ollama base URL (http://host:7207/ollama) serve embeddings, speech and transcription too.
    embedding_url: str | None = Field(
        "http://127.0.0.1:7202",
        description="Base URL of lingxi embedding, for /v1/embeddings, /v1/rerank and Ollama's /api/embed "
        "(empty: not forwarded).",
    )
    embedding_api_key: str | None = Field(None, description="Bearer key sent to the embedding service.")
    asr_url: str | None = Field(
        "http://127.0.0.1:7205",
        description="Base URL of lingxi asr, for /v1/audio/transcriptions and /v1/audio/translations (empty: off).",
    )
    asr_api_key: str | None = Field(None, description="Bearer key sent to the asr service.")
    tts_url: str | None = Field(
        "http://127.0.0.1:7206", description="Base URL of lingxi tts, for /v1/audio/speech (empty: off)."
    )
    tts_api_key: str | None = Field(None, description="Bearer key sent to the tts service.")
    websearch_url: str | None = Field(
        "http://127.0.0.1:5080",
        description="Base URL of lingxi websearch, for answers with sources: OpenAI's web_search_options on "
        "/v1/chat/completions and web_search on /api/chat (empty: off).",
    )
    websearch_api_key: str | None = Field(None, description="Bearer key sent to the websearch service.")
    sibling_connect_timeout_s: float = Field(3.0, description="Connect timeout to a sibling service.")
    sibling_timeout_s: float = Field(
        300.0, description="Read timeout: longest wait for a sibling's next bytes (a long transcription)."
    )
    realtime_max_session_s: float = Field(
        1800.0, description="Longest a /v1/realtime session lasts (OpenAI's limit: 30 minutes)."
    )
    realtime_max_buffer_s: float = Field(
        120.0, description="Most audio a /v1/realtime session's input buffer holds before it is committed."
    )
    sibling_models_ttl_s: float = Field(
        10.0, description="How long /v1/models and Ollama's /api/tags keep a sibling's model list."
    )
