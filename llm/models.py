"""Served models: which name goes to which engine and upstream model.

``LLM_MODELS`` (or ``LLM_MODELS_FILE``) maps served names to engines; without it one model is served
from ``LLM_ENGINE``. Models on the same upstream share one engine (one connection pool); local
models share one engine per model file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from llm.config import Engine, ModelRoute, Settings
from llm.embedded import embedded, is_embedded
from llm.engines import ENGINES
from llm.engines.base import ChatEngine
from services.engine import Lifecycle
from services.errors import NotFound
from services.health import Health, Status

IN_PROCESS = {Engine.llamacpp, Engine.local}  # engines that run the model here: no upstream


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


ROUTE_KEYS = {"upstream_model", "upstream_url", "upstream_api_key", "upstream_ca_bundle", "gguf_file"}


def routes_from(settings: Settings) -> list[ModelRoute]:
    defaults = {
        "upstream_url": settings.upstream_url,
        "upstream_api_key": settings.upstream_api_key,
        "upstream_ca_bundle": settings.upstream_ca_bundle,
    }
    table = model_table(settings)
    if table is None:
        engine = settings.engine
        upstream_model = settings.model_path if engine in IN_PROCESS else settings.upstream_model
        if engine in IN_PROCESS and not upstream_model:
            upstream_model = embedded(settings.embedded_model).name
        name = settings.model_name or upstream_model or engine.value
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
        unknown = set(merged) - ROUTE_KEYS
        if unknown:
            raise ValueError(f"LLM_MODELS entry {name!r} has unknown keys {sorted(unknown)}")
        if engine not in IN_PROCESS and not merged.get("upstream_url"):
            raise ValueError(f"model {name!r} uses the {engine.value} engine but LLM_UPSTREAM_URL is not set")
        if engine in IN_PROCESS:
            model = merged.get("upstream_model") or settings.embedded_model
            if is_embedded(model):  # served under its name; its other names are aliases
                known = embedded(model)
                merged["upstream_model"] = known.name
                merged["aliases"] = tuple(alias for alias in (known.name, *known.aliases) if alias != name)
        routes.append(ModelRoute(name=name, engine=engine, **merged))
    return routes


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes = {route.name: route for route in routes_from(settings)}
        self.aliases = {alias: route.name for route in self.routes.values() for alias in route.aliases}
        for name in self.routes:
            self.aliases.pop(name, None)  # a served name is never an alias of another
        self.default = self.aliases.get(settings.default_model or "", settings.default_model) or next(iter(self.routes))
        if self.default not in self.routes:
            raise ValueError(f"LLM_DEFAULT_MODEL {self.default!r} is not among the served models {list(self.routes)}")
        engines: dict[tuple[Any, ...], ChatEngine] = {}
        self.engine_of: dict[str, ChatEngine] = {}
        for route in self.routes.values():
            key = engine_key(route)
            if key not in engines:
                engines[key] = ENGINES[route.engine](route, settings)
            self.engine_of[route.name] = engines[key]
        self.lifecycles = {engine: Lifecycle(engine.description, engine) for engine in engines.values()}

    def add(self, route: ModelRoute) -> Lifecycle[ChatEngine]:
        """Serve one more model (a pulled GGUF); ``running`` starts it, or the caller when already running."""
        engine = ENGINES[route.engine](route, self.settings)
        lifecycle: Lifecycle[ChatEngine] = Lifecycle(engine.description, engine)
        self.routes[route.name] = route
        self.engine_of[route.name] = engine
        self.lifecycles[engine] = lifecycle
        return lifecycle

    async def discard(self, name: str) -> None:
        """Stop serving ``name`` and free its engine."""
        self.routes.pop(name, None)
        engine = self.engine_of.pop(name, None)
        if engine is not None and engine not in self.engine_of.values():
            await self.lifecycles.pop(engine).aclose()

    def resolve(self, name: str | None) -> tuple[ModelRoute, ChatEngine]:
        name = name or self.default
        route = self.routes.get(name) or self.routes.get(self.aliases.get(name, ""))
        if route is None:
            raise NotFound(f"model {name!r} not found; available: {', '.join(self.routes)}")
        return route, self.engine_of[route.name]

    def ready(self, name: str | None) -> tuple[ModelRoute, ChatEngine]:
        """As ``resolve``, for a generation: 503 while its engine is loading or failed to load."""
        route, engine = self.resolve(name)
        return route, self.lifecycles[engine].require()

    async def is_ready(self, engine: ChatEngine) -> bool:
        """Loaded, and (for an upstream) answering its health probe."""
        return self.lifecycles[engine].health().ready and (await engine.health()).ready

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Every engine starts in the background (the local model loads while /health says loading)."""
        async with AsyncExitStack() as stack:
            started = list(self.lifecycles.values())
            for lifecycle in started:
                await stack.enter_async_context(lifecycle.running())
            try:
                yield
            finally:  # and the engines of models added while serving
                for lifecycle in [lc for lc in self.lifecycles.values() if lc not in started]:
                    await lifecycle.aclose()

    async def health(self) -> Health:
        route, engine = self.resolve(None)
        report = self.lifecycles[engine].health()
        if report.ready:
            report = await engine.health()
        extra = {"model": route.name}
        if report.ready:
            return Health(Status.ok, extra=extra)
        return Health(report.status, f"model {route.name}: {report.detail}", extra)


def engine_key(route: ModelRoute) -> tuple[Any, ...]:
    if route.engine in IN_PROCESS:
        return (route.engine, route.upstream_model, route.gguf_file)
    return (route.engine, route.upstream_url, route.upstream_api_key, route.upstream_ca_bundle)
