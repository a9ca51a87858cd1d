"""``lingxi up`` keeps its processes running: real services and a real PostgreSQL on free ports,
killed with SIGKILL, come back and are counted; one that always crashes is left down; a second
``up`` refuses and leaves the first alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.registry import SERVICES
from tests.conftest import free_port, world_readable_tmpdir
from tests.services.test_up import alive

UP = [sys.executable, "-m", "services.cli", "up"]


@dataclass
class UpRun:
    """One ``lingxi up`` in the background; its output is collected line by line."""

    process: subprocess.Popen[str]
    data_dir: Path
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            assert self.process.poll() is None or text in self.output, self.output
            assert time.monotonic() < deadline, f"no {text!r} within {timeout_s} s:\n{self.output}"
            time.sleep(0.2)

    def health(self) -> dict[str, dict]:
        command = [sys.executable, "-m", "services.cli", "health", "--json", "--data-dir", str(self.data_dir)]
        names = [name for name in SERVICES if f"{name.upper()}_PORT" in self.env]
        result = subprocess.run([*command, *names], env=self.env, capture_output=True, text=True, timeout=30)
        return json.loads(result.stdout)

    def state(self) -> dict[str, dict]:
        return json.loads((self.data_dir / "lingxi-up.json").read_text())["processes"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


def start_up(names: list[str], extra_env: dict[str, str], *args: str) -> UpRun:
    data_dir = world_readable_tmpdir("lingxi-supervise-")
    env = {**os.environ, **extra_env}
    process = subprocess.Popen(
        [*UP, *names, "--data-dir", str(data_dir), "--wait", "60", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return UpRun(process, data_dir, env)


def eventually(check, timeout_s: float, interval_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except (AssertionError, httpx.HTTPError, KeyError, ValueError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"not so within {timeout_s} s"
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def suite() -> Iterator[UpRun]:
    """tts and websearch (with the local PostgreSQL; no embedding service, so websearch says so)."""
    env = {
        "TTS_PORT": str(free_port()),
        "WEBSEARCH_PORT": str(free_port()),
        "LINGXI_PG_PORT": str(free_port()),
        "WEBSEARCH_EMBEDDING_URL": f"http://127.0.0.1:{free_port()}",
        "WEBSEARCH_QDRANT_PATH": str(world_readable_tmpdir("lingxi-supervise-qdrant-")),
    }
    run = start_up(["tts", "websearch"], env)
    try:
        run.wait_for("lingxi is up", 180)
        yield run
    finally:
        run.stop()
    assert "all stopped" in run.output


def websearch_sees_postgres(run: UpRun) -> bool:
    body = httpx.get(f"http://127.0.0.1:{run.env['WEBSEARCH_PORT']}/health", timeout=5).json()
    return body["dependencies"]["postgres"] == "ok"


def test_killed_service_and_postgres_come_back_and_their_restarts_are_counted(suite):
    assert "restarts" in suite.output and f"{suite.data_dir}/logs/<service>.log" in suite.output
    eventually(lambda: websearch_sees_postgres(suite), 60)
    tts = f"http://127.0.0.1:{suite.env['TTS_PORT']}"
    pid = suite.state()["tts"]["pid"]
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    eventually(lambda: suite.state()["tts"]["pid"] != pid, 10)
    eventually(lambda: httpx.get(f"{tts}/health", timeout=2).status_code == 200, 30)
    print(f"tts: healthy {time.monotonic() - killed_at:.1f} s after SIGKILL")
    health = suite.health()
    assert health["tts"]["status"] == "ok" and health["tts"]["restarts"] == 1
    assert "tts was killed by SIGKILL; starting it again in 1 s" in suite.output
    assert (suite.data_dir / "logs" / "tts.log").read_text().count("tts listening on") == 2

    postmaster = suite.state()["postgres"]["pid"]
    os.kill(postmaster, signal.SIGKILL)
    eventually(lambda: suite.state()["postgres"]["restarts"] == 1, 60)
    assert alive(suite.state()["postgres"]["pid"])
    eventually(lambda: websearch_sees_postgres(suite), 60)
    health = suite.health()
    assert health["postgres"]["status"] == "ok" and health["postgres"]["restarts"] == 1
    assert health["websearch"]["restarts"] == 0


def test_a_second_up_refuses_at_once_and_leaves_the_first_running(suite):
    postmaster = suite.state()["postgres"]["pid"]
    first_pid = suite.process.pid
    same_dir = subprocess.run(
        [*UP, "tts", "websearch", "--data-dir", str(suite.data_dir)],
        env=suite.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert same_dir.returncode == 1
    assert f"another `lingxi up` (pid {first_pid}) is running over {suite.data_dir}" in same_dir.stderr

    other_dir = world_readable_tmpdir("lingxi-supervise-second-")
    same_ports = subprocess.run(
        [*UP, "tts", "websearch", "--data-dir", str(other_dir)],
        env=suite.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert same_ports.returncode == 1
    tts_pid = suite.state()["tts"]["pid"]
    assert f"port {suite.env['TTS_PORT']} (tts) is held by pid {tts_pid}" in same_ports.stderr
    assert f"port {suite.env['LINGXI_PG_PORT']} (postgres) is held by pid {postmaster}" in same_ports.stderr
    assert not (other_dir / "postgres").exists()  # nothing was started

    assert alive(postmaster) and suite.state()["postgres"]["pid"] == postmaster
    assert websearch_sees_postgres(suite)
    assert httpx.get(f"http://127.0.0.1:{suite.env['TTS_PORT']}/health", timeout=5).status_code == 200
    assert suite.process.poll() is None


def test_a_service_that_always_crashes_is_left_down_with_its_log_named():
    run = start_up(["vlm"], {"VLM_PORT": str(free_port()), "VLM_MAX_CONCURRENCY": "many"}, "--no-postgres")
    try:
        assert run.process.wait(timeout=90) == 1  # nothing left to run: `up` ends
    finally:
        run.stop()
    log = run.data_dir / "logs" / "vlm.log"
    message = f"vlm exited with code 1: it crashed 5 times within 120 s, so it is left down; see its log: {log}"
    assert message in run.output
    for pause in (1, 2, 4, 8):
        assert f"vlm exited with code 1; starting it again in {pause} s" in run.output
    assert run.output.count("vlm started again") == 4
    assert log.read_text().count("max_concurrency") >= 5  # what went wrong, each time
