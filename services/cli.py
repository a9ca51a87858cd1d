"""The ``lingxi`` command: ``serve`` one service, bring several ``up``, show their ``health``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from services.registry import SERVICES, ServiceSpec, get_spec


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def build(spec: ServiceSpec, **overrides: Any) -> tuple[Any, Any]:
    """The service's settings (from env/.env plus overrides) and its app."""
    config = importlib.import_module(f"{spec.module}.config")
    app_module = importlib.import_module(f"{spec.module}.app")
    settings = config.Settings(**{k: v for k, v in overrides.items() if v is not None})
    return settings, app_module.create_app(settings)


def serve(name: str, host: str | None = None, port: int | None = None) -> None:
    spec = get_spec(name)
    settings, app = build(spec, host=host, port=port)
    configure_logging(settings.log_level)
    logging.getLogger("lingxi").info("%s listening on http://%s:%s", name, settings.host, settings.port)
    if spec.framework == "flask":
        import waitress

        waitress.serve(
            app, host=settings.host, port=settings.port, threads=getattr(settings, "threads", 8), ident="lingxi"
        )
    else:
        import uvicorn

        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )


def gpu_map(value: str | None) -> dict[str, str]:
    """``LINGXI_GPUS=asr=0,llm=1`` → {"asr": "0", "llm": "1"}; ``llm=0+1`` pins two GPUs."""
    pins: dict[str, str] = {}
    for entry in (value or "").split(","):
        name, sep, devices = entry.strip().partition("=")
        if sep and name:
            pins[name.strip()] = devices.strip().replace("+", ",")
    return pins


def child_env(spec: ServiceSpec, pins: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    if spec.name in pins:
        env["CUDA_VISIBLE_DEVICES"] = pins[spec.name]
    return env


def fetch_health(spec: ServiceSpec, host: str, timeout_s: float = 3.0) -> dict[str, Any]:
    port = int(os.environ.get(f"{spec.name.upper()}_PORT", spec.port))
    try:
        body = httpx.get(f"http://{host}:{port}/health", timeout=timeout_s, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return {"status": "down", "detail": "no answer", "port": port}
    if spec.health_body == "envelope":  # {code, msg, data}: code 0 is healthy, otherwise msg says why
        healthy = body.get("code") == 0
        status = (body.get("data") or {}).get("status", "ok") if healthy else "error"
        return {"status": status, "detail": "" if healthy else body.get("msg", ""), "port": port}
    return {"status": body.get("status", "?"), "detail": body.get("detail", ""), "port": port}


def health_table(names: Sequence[str], host: str = "127.0.0.1") -> tuple[str, bool]:
    rows = [(name, fetch_health(SERVICES[name], host)) for name in names]
    lines = [f"{'service':<10} {'port':>5}  {'status':<15} detail"]
    for name, row in rows:
        lines.append(f"{name:<10} {row['port']:>5}  {row['status']:<15} {row['detail']}")
    return "\n".join(lines), all(row["status"] == "ok" for _, row in rows)


def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def is_alive(spec: ServiceSpec, host: str) -> bool:
    port = int(os.environ.get(f"{spec.name.upper()}_PORT", spec.port))
    try:
        return httpx.get(f"http://{host}:{port}/livez", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def up(names: Sequence[str], *, postgres: bool, data_dir: Path, wait_s: float) -> int:
    names = list(names) or list(SERVICES)
    for name in names:
        get_spec(name)
    pins = gpu_map(os.environ.get("LINGXI_GPUS"))
    extra_env: dict[str, str] = {}
    database = None
    unset = [var for var in (SERVICES[n].postgres_url_env for n in names) if var and not os.environ.get(var)]
    if postgres and unset:
        from services.postgres import LocalPostgres

        database = LocalPostgres(data_dir / "postgres", port=int(os.environ.get("LINGXI_PG_PORT", "55432")))
        print(f"starting PostgreSQL ({database.data_dir}, port {database.port}) ...", flush=True)
        database.start()
        extra_env.update(dict.fromkeys(unset, database.url))

    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop_all(*_: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nstopping ...", flush=True)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if database is not None:
            database.stop()
        print("all stopped", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (nohup, &)
    try:
        for name in names:
            spec = SERVICES[name]
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", name],
                env=child_env(spec, pins, extra_env),
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
            )
        host = "127.0.0.1"
        all_alive = wait_until(
            lambda: all(is_alive(SERVICES[n], host) or children[n].poll() is not None for n in names), timeout_s=120
        )
        if not all_alive:
            print("warning: some services did not answer /livez within 120 s", flush=True)
        wait_until(lambda: all(fetch_health(SERVICES[n], host)["status"] != "loading" for n in names), wait_s, 1.0)
        table, _ = health_table(names, host)
        print("\n" + table + "\n", flush=True)
        print("lingxi is up. Press Ctrl-C to stop.", flush=True)
        while True:
            for name, child in list(children.items()):
                code = child.poll()
                if code is not None:
                    print(f"{name} exited with code {code}", flush=True)
                    del children[name]
            if not children:
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lingxi", description="Run and inspect the lingxi services.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run one service in the foreground")
    serve_cmd.add_argument("name", choices=list(SERVICES))
    serve_cmd.add_argument("--host")
    serve_cmd.add_argument("--port", type=int)

    up_cmd = commands.add_parser("up", help="run several services, each its own process")
    up_cmd.add_argument("names", nargs="*", help=f"services to run (default: all of {', '.join(SERVICES)})")
    up_cmd.add_argument("--no-postgres", action="store_true", help="do not start the project-local PostgreSQL")
    up_cmd.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LINGXI_DATA_DIR", ".data")))
    up_cmd.add_argument("--wait", type=float, default=600.0, help="seconds to wait for engines to load")

    health_cmd = commands.add_parser("health", help="print every service's health")
    health_cmd.add_argument("names", nargs="*")
    health_cmd.add_argument("--host", default="127.0.0.1")
    health_cmd.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.name, args.host, args.port)
        return 0
    if args.command == "up":
        return up(args.names, postgres=not args.no_postgres, data_dir=args.data_dir, wait_s=args.wait)
    names = args.names or list(SERVICES)
    if args.json:
        print(json.dumps({n: fetch_health(SERVICES[n], args.host) for n in names}, indent=2))
        return 0
    table, healthy = health_table(names, args.host)
    print(table)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
