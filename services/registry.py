"""The service registry: name → port, Python package, framework, and what its launcher must provide.

The CLI, the compose test and the README table all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    module: str
    framework: Literal["fastapi", "flask"]
    uses_gpu: bool = True
    # the shape of GET /health: "plain" {"status", "detail"}, or "envelope" {"code", "msg", "data": {"status"}}
    health_body: Literal["plain", "envelope"] = "plain"
    # the variable naming the service's PostgreSQL; `lingxi up` starts a local cluster and sets it when it is unset
    postgres_url_env: str | None = None


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("asr", 7205, "asr", "fastapi"),
        ServiceSpec("llm", 7207, "llm", "fastapi"),
        ServiceSpec("tts", 7206, "tts", "flask"),
        ServiceSpec("vlm", 7208, "vlm", "fastapi"),
        ServiceSpec("embedding", 7202, "embedding", "fastapi"),
        ServiceSpec(
            "websearch", 5080, "websearch", "fastapi", uses_gpu=False, postgres_url_env="WEBSEARCH_DATABASE_URL"
        ),
        ServiceSpec("opro", 8010, "opro", "fastapi", uses_gpu=False, health_body="envelope"),
    )
}


def get_spec(name: str) -> ServiceSpec:
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
