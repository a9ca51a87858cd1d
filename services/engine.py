"""One engine life cycle for every service: build, start in the background, report, require, close.

An engine lacking a setting raises ``NotConfigured`` (when built or started): the service runs and /health
says what to set. ``start`` runs while the app serves (/health: loading); an unreachable upstream is tried
again after ``RETRY_S``; any other failure is logged and reported on /health, and the process stays up.
Requests ``require()`` the engine: 503 with /health's detail until it is ready.

Every engine Protocol extends ``Engine``. Blocking work in ``start`` (loading weights) is the engine's to
move off the event loop, with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Generic, Protocol, TypeVar

from services.errors import LingxiError, NotConfigured, NotReady, UpstreamError, UpstreamTimeout
from services.health import Health, Status
from services.settings import ServiceSettings

log = logging.getLogger("lingxi.engine")
RETRY_S = (1, 2, 5, 10, 30)  # an unreachable upstream is tried again after these pauses (then every 30 s)


class Engine(Protocol):
    """What every engine Protocol extends; an engine class subclasses it for the do-nothing defaults."""

    async def start(self) -> None:
        """Load the model or reach the upstream (default: nothing to do)."""
        return None

    async def aclose(self) -> None:
        """Free threads and connection pools (default: nothing to free; models go with the engine)."""
        return None


E = TypeVar("E", bound=Engine)


class Lifecycle(Generic[E]):
    """The state of one engine; ``label`` names it in /health and errors ("the whisper engine")."""

    def __init__(self, label: str, engine: E | None, *, not_configured: str | None = None) -> None:
        self.label = label
        self.engine = engine
        self.status = Status.loading if engine is not None else Status.not_configured
        self.detail = f"{label} is still loading; retry shortly" if engine is not None else not_configured

    @classmethod
    def build(cls, label: str, factory: Callable[[], E]) -> Lifecycle[E]:
        """The life cycle of ``factory()``, or of no engine when it raises ``NotConfigured``."""
        try:
            return cls(label, factory())
        except NotConfigured as exc:
            return cls(label, None, not_configured=exc.message)

    @property
    def ready(self) -> bool:
        return self.status is Status.ok

    async def start(self) -> None:
        if self.engine is None:
            return
        for attempt in itertools.count():
            try:
                await self.engine.start()
            except (UpstreamError, UpstreamTimeout) as exc:
                pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                self.status, self.detail = Status.error, f"{exc.message}; retrying in {pause} s"
                log.warning("%s: %s", self.label, self.detail)
                await asyncio.sleep(pause)
                continue
            except NotConfigured as exc:
                self.status, self.detail = Status.not_configured, exc.message
                log.error("%s is not configured: %s", self.label, exc.message)
            except Exception as exc:  # any failure to start: /health says why, the process stays up
                log.error("%s failed to load", self.label, exc_info=not isinstance(exc, LingxiError))
                why = exc.message if isinstance(exc, LingxiError) else f"{type(exc).__name__}: {exc}"
                self.status, self.detail = Status.error, f"{self.label} failed to load and is not ready: {why}"
            else:
                self.status, self.detail = Status.ok, None
                log.info("%s is ready", self.label)
            return

    def health(self, extra: dict[str, Any] | None = None) -> Health:
        return Health(self.status, self.detail, extra or {})

    def require(self) -> E:
        """The engine once started; 503 with /health's detail before (and after a failed start)."""
        if self.status is Status.ok and self.engine is not None:
            return self.engine
        headers = {"Retry-After": "5"} if self.status is Status.loading else None
        raise NotReady(self.detail or f"{self.label} is not ready", headers=headers)

    async def aclose(self) -> None:
        if self.engine is not None:
            await self.engine.aclose()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For an app's lifespan: start in the background, and at shutdown stop starting and close."""
        starting = asyncio.create_task(self.start(), name=f"start {self.label}")
        try:
            yield
        finally:
            starting.cancel()
            with suppress(asyncio.CancelledError):
                await starting
            await self.aclose()


def require_settings(settings: ServiceSettings, *names: str) -> None:
    """Raise ``NotConfigured`` naming, as environment variables, the settings the chosen engine lacks."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()  # "VLM_"
    missing = [f"{prefix}{name.upper()}" for name in names if not getattr(settings, name)]
    if missing:
        engine = settings.model_dump(mode="json", include={"engine"}).get("engine")
        docs = f"docs/{prefix.rstrip('_').lower()}.md"
        raise NotConfigured(f"{prefix}ENGINE={engine} needs {' and '.join(missing)}; see {docs}")
