"""opro settings: environment variables prefixed ``OPRO_`` (or lines in ``.env``)."""

from __future__ import annotations

import enum

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings, data_path


class LLMBackend(str, enum.Enum):
    openai = "openai"  # any OpenAI-compatible server: lingxi llm (default), vLLM, SGLang, a cloud API
    ollama = "ollama"  # Ollama's native API at OPRO_OLLAMA_URL (lingxi llm serves it under /ollama)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPRO_", env_file=".env", extra="ignore")

    port: int = Field(8010, description="TCP port of the opro service.")

    llm_backend: LLMBackend = Field(LLMBackend.openai, description="Which API answers and writes candidates.")
    llm_url: str = Field("http://127.0.0.1:7207/v1", description="Base URL of the OpenAI-compatible LLM (…/v1).")
    llm_api_key: str | None = Field(None, description="Bearer key sent to the LLM (cloud APIs, a keyed lingxi llm).")
    ollama_url: str | None = Field(
        None,
        description="Ollama base URL (http://host:11434): the LLM when OPRO_LLM_BACKEND=ollama, and the "
        "embedding fallback when the embedding service fails.",
    )
    default_model: str | None = Field(
        None, description="Model used when a session has none set (default: the first chat model of /models)."
    )
    llm_timeout_s: float = Field(300.0, description="Longest wait for one LLM answer.")
    embedding_url: str = Field("http://127.0.0.1:7202", description="lingxi embedding (its /v1/embeddings).")
    embedding_api_key: str | None = Field(None, description="Bearer key sent to the embedding service.")
    embedding_model: str | None = Field(None, description="Embedding model name (default: the service's own).")
    ollama_embedding_model: str = Field("qwen3-embedding:4b", description="Model of the Ollama embedding fallback.")
    embedding_timeout_s: float = Field(60.0, description="Longest wait for one embedding call.")

    database_url: str | None = Field(
        None, description="PostgreSQL URL (postgresql://user:pw@host/db); unset: SQLite in OPRO_DATA_DIR."
    )
    data_dir: str = Field(
        default_factory=lambda: str(data_path("opro")),
        description="Directory of the SQLite database when no PostgreSQL is set; default: $LINGXI_DATA_DIR/opro.",
    )
    feedback_path: str = Field(
        default_factory=lambda: str(data_path("opro", "user_feedback.jsonl")),
        description="JSONL file every select/reject goes to; default: $LINGXI_DATA_DIR/opro/user_feedback.jsonl.",
    )

    top_k: int = Field(5, ge=1, le=20, description="Candidates offered per round.")
    cluster_threshold: float = Field(
        0.15, ge=0.0, le=2.0, description="Cosine distance under which two candidates count as the same."
    )
    raw_candidates: int = Field(10, ge=1, le=50, description="Raw candidates asked of the LLM per round.")
    max_rounds: int = Field(3, ge=1, description="MAX_ROUNDS of the legacy /next route.")
    candidate_max_tokens: int = Field(400, ge=1, description="Token budget of one candidate-generation call.")
    answer_max_tokens: int = Field(512, ge=1, description="Token budget of one answer.")
    temperature: float = Field(0.9, ge=0.0, le=2.0, description="Sampling temperature when writing candidates.")
    max_query_chars: int = Field(8000, ge=1, description="Longest question or message accepted (400 above it).")
    history_turns: int = Field(6, ge=0, description="Earlier messages sent with /message.")

    optimize_concurrency: int = Field(
        4, ge=1, le=256, description="LLM calls the OPRO jobs make at once, all jobs together (/optimize)."
    )
    optimize_max_jobs: int = Field(4, ge=1, description="Optimisation jobs running at once (429 above it).")
    optimize_max_examples: int = Field(2000, ge=2, description="Most labelled examples in one /optimize task.")
    optimize_retry_s: float = Field(
        600.0, ge=0.0, description="How long a job retries an LLM that is busy, loading or failing before it fails."
    )
    job_lease_s: float = Field(
        30.0,
        ge=1.0,
        description="How long a replica's claim on a running /optimize job lasts unrenewed; once it has expired "
        "(the replica died) another replica on the same database takes the job over.",
    )
    optimize_instruction_max_tokens: int = Field(
        256, ge=16, description="Token budget of one optimizer call (one proposed instruction)."
    )
