"""The service registry: name → port, Python package, framework and default engine.

The CLI, the compose test and the README table all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    module: str
    framework: str  # "fastapi" or "flask"
    default_engine: str
    summary: str
    uses_gpu: bool = True


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("asr", 7205, "asr", "fastapi", "whisper", "speech recognition"),
        ServiceSpec("llm", 7207, "llm", "fastapi", "local", "LLM gateway (OpenAI + Ollama compatible)"),
        ServiceSpec("tts", 7206, "tts", "flask", "espeak", "text-to-speech with styles and voice prompts"),
        ServiceSpec("vlm", 7208, "vlm", "fastapi", "none", "image description"),
        ServiceSpec(
            "embedding", 7202, "embedding", "fastapi", "sentence-transformers", "embeddings, similarity, rerank"
        ),
        ServiceSpec("websearch", 5080, "websearch", "fastapi", "postgres+qdrant", "web ingest and search", False),
        ServiceSpec("opro", 8010, "opro", "fastapi", "llm+embedding", "prompt optimizer with a web UI", False),
    )
}


def get_spec(name: str) -> ServiceSpec:
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
