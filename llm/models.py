"""Served models: which name goes to which engine and upstream model.

``LLM_MODELS`` (or ``LLM_MODELS_FILE``) maps served names to engines; without it one model is served
from ``LLM_ENGINE``. Models on the same upstream share one engine (one connection pool); local
models share one engine per model file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.config import Engine, Settings
from llm.engines.base import ChatEngine
from llm.engines.llamacpp import LlamaCppEngine
from llm.engines.local import EMBEDDED_NAME, LocalEngine
from llm.engines.ollama import OllamaEngine
from llm.engines.openai import OpenAIEngine
from llm.engines.upstream import Upstream
from services.errors import NotFound
from services.health import Health, Status

log = logging.getLogger("lingxi.llm")
IN_PROCESS = {Engine.llamacpp, Engine.local}  # engines that run the model here: no upstream


@dataclass(frozen=True)
class ModelRoute:
    name: str  # what clients send as "model"
    engine: Engine
    upstream_model: str | None = None  # the name the upstream knows (or the local model path)
    upstream_url: str | None = None
    upstream_api_key: str | None = None
    gguf_file: str | None = None

    @property
    def engine_model(self) -> str:
        return self.upstream_model or self.name


def parse_compact(text: str) -> dict[str, dict[str, Any]]:
    """``name=engine:upstream_model,...`` (upstream_model may itself contain ':' and '/')."""
    table: dict[str, dict[str, Any]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, target = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"LLM_MODELS entry {item!r} is not name=engine[:upstream_model]")
        engine, _, upstream_model = target.partition(":")
        table[name.strip()] = {"engine": engine.strip(), "upstream_model": upstream_model.strip() or None}
    return table


def model_table(settings: Settings) -> dict[str, dict[str, Any]] | None:
    if settings.models_file:
        return json.loads(Path(settings.models_file).read_text())
    if not settings.models:
        return None
    text = settings.models.strip()
    return json.loads(text) if text.startswith("{") else parse_compact(text)


def routes_from(settings: Settings) -> list[ModelRoute]:
    defaults = {
        "upstream_url": settings.upstream_url,
        "upstream_api_key": settings.upstream_api_key,
    }
    table = model_table(settings)
    if table is None:
        engine = settings.engine
        upstream_model = settings.model_path if engine in IN_PROCESS else settings.upstream_model
        name = settings.model_name or (EMBEDDED_NAME if engine in IN_PROCESS and not upstream_model else None)
        name = name or upstream_model or engine.value
        table = {name: {"engine": engine.value, "upstream_model": upstream_model, "gguf_file": settings.gguf_file}}
    routes = []
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise ValueError(f"LLM_MODELS entry {name!r} must be an object")
        try:
            engine = Engine(spec.get("engine", settings.engine.value))
        except ValueError:
            raise ValueError(f"LLM_MODELS entry {name!r}: engine must be one of {[e.value for e in Engine]}") from None
        merged = {**defaults, **{k: v for k, v in spec.items() if v is not None and k != "engine"}}
        unknown = set(merged) - {"upstream_model", "upstream_url", "upstream_api_key", "gguf_file"}
        if unknown:
            raise ValueError(f"LLM_MODELS entry {name!r} has unknown keys {sorted(unknown)}")
        if engine not in IN_PROCESS and not merged.get("upstream_url"):
            raise ValueError(f"model {name!r} uses the {engine.value} engine but LLM_UPSTREAM_URL is not set")
        routes.append(ModelRoute(name=name, engine=engine, **merged))
    return routes


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes = {route.name: route for route in routes_from(settings)}
        self.default = settings.default_model or next(iter(self.routes))
        if self.default not in self.routes:
            raise ValueError(f"LLM_DEFAULT_MODEL {self.default!r} is not among the served models {list(self.routes)}")
        self.engines: dict[tuple[Any, ...], ChatEngine] = {}
        self.engine_of: dict[str, ChatEngine] = {}
        for route in self.routes.values():
            key = engine_key(route)
            if key not in self.engines:
                self.engines[key] = self.build(route)
            self.engine_of[route.name] = self.engines[key]
        self.tasks: list[asyncio.Task[None]] = []

    def build(self, route: ModelRoute) -> ChatEngine:
        s = self.settings
        if route.engine is Engine.llamacpp:
            return LlamaCppEngine(
                route.upstream_model,
                route.gguf_file,
                threads=s.threads,
                max_tokens=s.max_tokens,
                max_input_tokens=s.max_input_tokens,
                max_queue=s.local_max_queue,
                parallel=s.local_parallel,
                convert=s.gguf_convert,
                cache_dir=s.model_cache_dir,
            )
        if route.engine is Engine.local:
            return LocalEngine(
                route.upstream_model,
                route.gguf_file,
                device=s.device,
                threads=s.threads,
                max_tokens=s.max_tokens,
                max_input_tokens=s.max_input_tokens,
                max_queue=s.local_max_queue,
            )
        upstream = Upstream(
            str(route.upstream_url),
            kind=route.engine.value,
            api_key=route.upstream_api_key,
            connect_timeout_s=s.upstream_connect_timeout_s,
            timeout_s=s.upstream_timeout_s,
            max_connections=s.upstream_max_connections,
            retries=s.upstream_retries,
        )
        return ENGINES[route.engine](upstream)

    def resolve(self, name: str | None) -> tuple[ModelRoute, ChatEngine]:
        route = self.routes.get(name or self.default)
        if route is None:
            raise NotFound(f"model {name!r} not found; available: {', '.join(self.routes)}")
        return route, self.engine_of[route.name]

    def start(self) -> None:
        """Start every engine in the background (the local model loads while /health says loading)."""
        self.tasks = [asyncio.create_task(engine.start()) for engine in self.engines.values()]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for engine in self.engines.values():
            await engine.close()

    async def health(self) -> Health:
        route, engine = self.resolve(None)
        report = await engine.health()
        extra = {"model": route.name}
        if report.status is Status.ok:
            return Health(Status.ok, extra=extra)
        return Health(report.status, f"model {route.name}: {report.detail}", extra)


def engine_key(route: ModelRoute) -> tuple[Any, ...]:
    if route.engine in IN_PROCESS:
        return (route.engine, route.upstream_model, route.gguf_file)
    return (route.engine, route.upstream_url, route.upstream_api_key)


ENGINES: dict[Engine, type[OpenAIEngine] | type[OllamaEngine]] = {
    Engine.openai: OpenAIEngine,
    Engine.ollama: OllamaEngine,
}
