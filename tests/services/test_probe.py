"""The containers' health check (``python -m services.probe NAME``): healthy while the service answers and is
ready or waits for its settings (vlm with no vision model), unhealthy when nothing answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import free_port, stop_process


def probe(name: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, f"{name.upper()}_PORT": str(port)}
    return subprocess.run([sys.executable, "-m", "services.probe", name], env=env, capture_output=True, text=True)


def test_a_service_waiting_for_its_settings_is_live_and_not_ready():
    port = free_port()
    env = {**os.environ, "VLM_PORT": str(port), "VLM_HOST": "127.0.0.1", "VLM_ENGINE": "none"}
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "vlm"], env=env)
    try:
        deadline = time.monotonic() + 60
        while probe("vlm", port).returncode != 0:
            assert process.poll() is None and time.monotonic() < deadline, "vlm did not come up"
            time.sleep(0.3)
        health = httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False)
        assert health.status_code == 503 and health.json()["status"] == "not_configured"
    finally:
        stop_process(process)


def test_nothing_answering_is_unhealthy_and_says_so():
    result = probe("asr", free_port())
    assert result.returncode == 1
    assert result.stderr.strip() == "asr: down"
