"""The compose stack for tests/compose: built, brought up and taken down (``down -v``) once per run.

Run by scripts/compose-check (``./scripts/test --compose``), which picks the ports, the Compose binary and
the stand-in images and exports them as ``LINGXI_CHECK_*``; the times go to stderr as ``compose-check:``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
FILES = ("docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.check.yml")
PROJECT = "lingxi-check"
UP_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 3600  # a cold build compiles llama-cpp-python: ~20 min on 2 busy cores


def report(line: str) -> None:
    """A time for scripts/compose-check to print once pytest (which captures stderr) is done."""
    path = Path(os.environ.get("LINGXI_CHECK_REPORT", ROOT / ".data" / "compose-check" / "report.txt"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        print(f"compose-check: {line}", file=file)


def compose(*args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("LINGXI_CHECK_COMPOSE", "docker compose").split()
    files = [arg for name in FILES for arg in ("-f", str(ROOT / name))]
    command = [*binary, *files, "-p", PROJECT, *args]
    return subprocess.run(command, cwd=ROOT, check=check, timeout=timeout, capture_output=True, text=True)


def port(name: str) -> int:
    default = SERVICES[name].port if name in SERVICES else {"postgres": 5432, "pages": 8000}[name]
    return int(os.environ.get(f"LINGXI_CHECK_{name.upper()}_PORT", default))


@dataclass
class Stack:
    up_s: float

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{port(name)}{path}"

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return compose("exec", "-T", service, *command, timeout=120, check=False)

    def container(self, service: str) -> str:
        return compose("ps", "-q", service).stdout.strip()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    built = compose("build", check=False, timeout=BUILD_TIMEOUT_S)
    if built.returncode:
        pytest.fail(f"docker compose build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    report(f"build {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    try:
        up = compose("up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), check=False)
        up_s = time.monotonic() - started
        report(f"up --wait {up_s:.0f} s (every container healthy)")
        if up.returncode:
            logs = compose("logs", "--tail", "30", check=False).stdout
            pytest.fail(f"docker compose up --wait failed:\n{up.stderr[-3000:]}\n{logs[-6000:]}")
        yield Stack(up_s)
    finally:
        started = time.monotonic()
        compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
        report(f"down -v {time.monotonic() - started:.0f} s")
