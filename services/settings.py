"""Settings base shared by every service.

Each service subclasses ``ServiceSettings`` with its own env prefix (``ASR_``, ``LLM_``, ...), so
``ASR_PORT=9000`` or a line in ``.env`` changes the asr port and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def split_csv(value: object) -> object:
    """Let list settings be written as ``a,b,c`` in the environment."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def data_path(*parts: str) -> Path:
    """Where a service writes by default: under ``LINGXI_DATA_DIR`` (``/data`` in the images), else ``.data``."""
    return Path(os.environ.get("LINGXI_DATA_DIR") or ".data", *parts)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind. Use 0.0.0.0 inside containers.")
    port: int = Field(0, description="TCP port; each service sets its own default.")
    log_level: str = Field("info", description="debug, info, warning or error.")
    api_key: str | None = Field(
        None, description="When set, every route except /health and /livez needs 'Authorization: Bearer <key>'."
    )
    max_request_bytes: int = Field(50 * 1024 * 1024, description="Largest request body accepted (413 above it).")
    max_concurrency: int = Field(64, description="Requests handled at once; more wait in the queue below.")
    max_queue: int = Field(256, description="Requests allowed to wait for a slot; beyond it: 429.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host:port entries the URL fetcher may reach even though they are private.",
    )
    fetch_timeout_s: float = Field(20.0, description="Deadline for fetching one user-supplied URL.")
    fetch_max_bytes: int = Field(20 * 1024 * 1024, description="Largest body fetched from a URL.")

    _split_allowed_hosts = field_validator("allowed_hosts", mode="before")(split_csv)
