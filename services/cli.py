"""The ``lingxi`` command: ``serve`` one service, bring several ``up``, show their ``health``, pull ``models``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from services.models.cli import add_commands
from services.models.cli import run as run_models
from services.postgres import LocalPostgres
from services.registry import SERVICES, ServiceSpec, get_spec
from services.supervisor import PostgresProcess, Process, ServiceProcess, Supervisor, read_state
from services.uplock import STATE_FILE, AlreadyRunning, UpLock, check_ports

# Seconds a stopping service gives its requests in flight (LINGXI_GRACE_S); `up` kills it 5 s later.
GRACE_S = float(os.environ.get("LINGXI_GRACE_S", "10"))


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
        from services.serving import serve_wsgi

        threads = getattr(settings, "threads", 8)
        serve_wsgi(app, host=settings.host, port=settings.port, threads=threads, grace_s=GRACE_S)
    else:
        from services.serving import serve_asgi

        serve_asgi(app, host=settings.host, port=settings.port, log_level=settings.log_level, grace_s=GRACE_S)


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


def service_port(spec: ServiceSpec) -> int:
    return int(os.environ.get(f"{spec.name.upper()}_PORT", spec.port))


def fetch_health(spec: ServiceSpec, host: str, timeout_s: float = 3.0) -> dict[str, Any]:
    port = service_port(spec)
    try:
        body = httpx.get(f"http://{host}:{port}/health", timeout=timeout_s, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return {"status": "down", "detail": "no answer", "port": port}
    if spec.health_body == "envelope":  # {code, msg, data}: code 0 is healthy, otherwise msg says why
        healthy = body.get("code") == 0
        status = (body.get("data") or {}).get("status", "ok") if healthy else "error"
        return {"status": status, "detail": "" if healthy else body.get("msg", ""), "port": port}
    return {"status": body.get("status", "?"), "detail": body.get("detail", ""), "port": port}


def postgres_health(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return {"status": "down", "detail": "no answer", "port": port}
    return {"status": "ok", "detail": "", "port": port}


def health_rows(
    names: Sequence[str], host: str = "127.0.0.1", supervised: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each service's health; with what ``lingxi up`` supervises, its restarts too, and the local PostgreSQL."""
    supervised = supervised or {}
    rows = {name: fetch_health(SERVICES[name], host) for name in names}
    if "postgres" in supervised:
        rows["postgres"] = postgres_health(supervised["postgres"]["port"], host)
    for name, row in rows.items():
        unit = supervised.get(name)
        if unit is None:
            continue
        row["restarts"] = unit["restarts"]
        if unit["state"] != "running" and row["status"] == "down":
            row["detail"] = unit["message"]  # why it is down: restarting, or left down (and where its log is)
    return rows


def health_table(
    names: Sequence[str], host: str = "127.0.0.1", supervised: dict[str, dict[str, Any]] | None = None
) -> tuple[str, bool]:
    rows = health_rows(names, host, supervised)
    lines = [f"{'service':<10} {'port':>5}  {'status':<15} {'restarts':>8}  detail"]
    for name, row in rows.items():
        restarts = row.get("restarts", "-")
        lines.append(f"{name:<10} {row['port']:>5}  {row['status']:<15} {restarts:>8}  {row['detail']}")
    return "\n".join(lines), all(row["status"] == "ok" for row in rows.values())


def is_alive(spec: ServiceSpec, host: str) -> bool:
    try:
        url = f"http://{host}:{service_port(spec)}/livez"
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def supervise_until(supervisor: Supervisor, predicate: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    """Keep the processes running while waiting for ``predicate``; False if ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor.tick()
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def fresh_log(path: Path) -> Path:
    """The log file of one service for this run; the previous run's is kept as ``<name>.log.1``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.replace(path.with_suffix(".log.1"))
    return path


def up(names: Sequence[str], *, postgres: bool, data_dir: Path, wait_s: float) -> int:
    names = list(names) or list(SERVICES)
    for name in names:
        get_spec(name)
    data_dir = data_dir.absolute()
    try:
        with UpLock(data_dir):
            return run_up(names, postgres=postgres, data_dir=data_dir, wait_s=wait_s)
    except AlreadyRunning as exc:
        print(f"lingxi up: {exc}", file=sys.stderr, flush=True)
        return 1


def run_up(names: list[str], *, postgres: bool, data_dir: Path, wait_s: float) -> int:
    """``up`` once it holds the data dir: check the ports, start and supervise everything, stop it all."""
    pins = gpu_map(os.environ.get("LINGXI_GPUS"))
    extra_env: dict[str, str] = {}
    ports = {name: service_port(SERVICES[name]) for name in names}
    processes: list[Process] = []
    unset = [var for var in (SERVICES[n].postgres_url_env for n in names) if var and not os.environ.get(var)]
    if postgres and unset:
        database = LocalPostgres(data_dir / "postgres", port=int(os.environ.get("LINGXI_PG_PORT", "55432")))
        if not database.postmaster_alive():  # alive: a killed earlier run left it (this run holds the dir now)
            ports["postgres"] = database.port
        extra_env.update(dict.fromkeys(unset, database.url))
        processes.append(PostgresProcess(database))
    check_ports(ports)  # before anything starts: a clash stops nothing of whoever holds the port
    logs = data_dir / "logs"
    for name in names:
        command = [sys.executable, "-m", "services.cli", "serve", name]
        env = child_env(SERVICES[name], pins, extra_env)
        processes.append(ServiceProcess(name, command, env, fresh_log(logs / f"{name}.log")))
    supervisor = Supervisor(processes, data_dir / STATE_FILE, say=lambda message: print(message, flush=True))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (nohup, &)
    try:
        if processes and isinstance(processes[0], PostgresProcess):
            database = processes[0].database
            print(f"starting PostgreSQL ({database.data_dir}, port {database.port}) ...", flush=True)
        try:
            supervisor.start_all()
        except RuntimeError as exc:
            print(f"lingxi up: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"each service writes its output to {logs}/<service>.log", flush=True)
        host = "127.0.0.1"
        alive = supervise_until(
            supervisor, lambda: all(supervisor.given_up(n) or is_alive(SERVICES[n], host) for n in names), 120
        )
        if not alive:
            print("warning: some services did not answer /livez within 120 s", flush=True)

        def loaded(name: str) -> bool:
            return supervisor.given_up(name) or fetch_health(SERVICES[name], host)["status"] != "loading"

        supervise_until(supervisor, lambda: all(loaded(n) for n in names), wait_s, 1.0)
        table, _ = health_table(names, host, supervisor.snapshot())
        print("\n" + table + "\n", flush=True)
        print("lingxi is up. Press Ctrl-C to stop.", flush=True)
        while not all(supervisor.given_up(name) for name in names):
            supervisor.tick()
            time.sleep(0.5)
        print("every service is down; stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nstopping ...", flush=True)
        supervisor.stop_all(grace_s=GRACE_S + 5)
        print("all stopped", flush=True)


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
    health_cmd.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("LINGXI_DATA_DIR", ".data")),
        help="the data dir of a running `lingxi up`, for its restart counts",
    )

    add_commands(commands)

    args = parser.parse_args(argv)
    if args.command == "models":
        return run_models(args)
    if args.command == "serve":
        serve(args.name, args.host, args.port)
        return 0
    if args.command == "up":
        return up(args.names, postgres=not args.no_postgres, data_dir=args.data_dir, wait_s=args.wait)
    names = args.names or list(SERVICES)
    supervised = read_state(args.data_dir.absolute())
    if args.json:
        print(json.dumps(health_rows(names, args.host, supervised), indent=2))
        return 0
    table, healthy = health_table(names, args.host, supervised)
    print(table)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
