"""A container's health check: ``python -m services.probe NAME`` exits 0 while the service is up and
either ready or waiting for its settings, 1 otherwise.

``not_configured`` counts as healthy here (liveness): waiting will not change it, and a compose
``up --wait`` on a box with no vision model must not fail on vlm. Readiness is unchanged: ``/health``
still answers 503 and ``lingxi health`` shows it. ``loading`` and ``error`` are unhealthy, so services
that depend on this one (``depends_on: service_healthy``) start once it can answer. Docker runs this
every few seconds in every container: it imports the standard library and the registry only.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from services.registry import ServiceSpec, get_spec

HEALTHY = frozenset({"ok", "not_configured"})


def health_status(spec: ServiceSpec, host: str = "127.0.0.1") -> str:
    """What the service's /health says (``down`` when nothing answers), as ``lingxi health`` reads it."""
    port = int(os.environ.get(f"{spec.name.upper()}_PORT", spec.port))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{host}:{port}/health", timeout=4) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            body = json.load(error)
        except ValueError:
            return "error"
    except (OSError, ValueError):
        return "down"
    if spec.health_body == "envelope":  # {code, msg, data}: code 0 is healthy
        return (body.get("data") or {}).get("status", "ok") if body.get("code") == 0 else "error"
    return str(body.get("status", "?"))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m services.probe NAME", file=sys.stderr)
        return 2
    status = health_status(get_spec(argv[0]))
    if status in HEALTHY:
        return 0
    print(f"{argv[0]}: {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
