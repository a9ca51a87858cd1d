"""Serve one app until SIGTERM or Ctrl-C, then stop gracefully: no new connections, the requests in
flight get a grace period to finish, and open NDJSON/SSE streams end with an in-band error just
before it is over (``services.streaming.SHUTDOWN``) instead of being cut.

FastAPI services run on uvicorn, the Flask one (tts) on waitress.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

log = logging.getLogger("lingxi")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def serve_asgi(app: Any, *, host: str, port: int, log_level: str, grace_s: float) -> None:
    import uvicorn

    from services.streaming import SHUTDOWN

    class GracefulServer(uvicorn.Server):
        async def serve(self, sockets: list[Any] | None = None) -> None:
            SHUTDOWN.bind(asyncio.get_running_loop())
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                SHUTDOWN.begin(after_s=max(0.0, grace_s - 1.0))  # streams end a second before uvicorn gives up
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(grace_s),
    )
    GracefulServer(config).run()


def serve_wsgi(app: Any, *, host: str, port: int, threads: int, grace_s: float) -> None:
    """waitress has no graceful stop of its own: its loop is run here, and on a stop signal the
    listening socket closes while the loop goes on until every channel has sent its response."""
    import waitress
    from waitress import wasyncore

    server: Any = waitress.create_server(app, host=host, port=port, threads=threads, ident="lingxi")
    stop_requested: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: stop_requested.append(signum)) for sig in STOP_SIGNALS}

    def busy() -> bool:
        return any(ch.requests or ch.total_outbufs_len for ch in list(server.active_channels.values()))

    deadline = None
    try:
        while deadline is None or (busy() and time.monotonic() < deadline):
            wasyncore.loop(timeout=0.2, map=server._map, count=1)
            if stop_requested and deadline is None:
                log.info("stopping: no new connections; %.0f s for the requests in flight", grace_s)
                wasyncore.dispatcher.close(server)  # the listening socket only (not the loop's trigger)
                deadline = time.monotonic() + grace_s
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
