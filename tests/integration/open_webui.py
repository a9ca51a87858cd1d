"""Open WebUI for the integration tests: where it is installed, the opt-in marks, the settings every start
needs (offline, no telemetry, its own data dir) and a signed-in client of a running one.

Open WebUI lives in its own venv: ``python3.11 -m venv /tmp/owui-venv && /tmp/owui-venv/bin/pip install
open-webui==0.12.4`` (or set ``OPEN_WEBUI_BIN`` to its ``open-webui`` executable).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_healthy

OPEN_WEBUI = Path(os.environ.get("OPEN_WEBUI_BIN", "/tmp/owui-venv/bin/open-webui"))
EMBEDDER = "use-multilingual-v3"
START_TIMEOUT_S = 300  # the first start runs its database migrations: ~90 s on a busy 2-core box

needs_open_webui = [
    pytest.mark.skipif(not os.environ.get("LINGXI_INTEGRATION"), reason="opt-in: set LINGXI_INTEGRATION=1"),
    pytest.mark.skipif(not OPEN_WEBUI.exists(), reason=f"Open WebUI is not installed at {OPEN_WEBUI}"),
]


def offline_env(data_dir: Path) -> dict[str, str]:
    """What every start needs: no network of its own, no telemetry, its database in ``data_dir``, no sign-up."""
    return {
        **os.environ,
        "OFFLINE_MODE": "true",
        "WEBUI_AUTH": "False",
        "DATA_DIR": str(data_dir),
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
    }


@contextmanager
def open_webui(env: dict[str, str], data_dir: Path) -> Iterator[httpx.Client]:
    """Open WebUI on 127.0.0.1 with ``env``, working in ``data_dir`` (it writes its .webui_secret_key into its
    working directory), signed in (with WEBUI_AUTH=False the sign-in makes the one admin)."""
    port = free_port()
    command = [str(OPEN_WEBUI), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (data_dir / "open-webui.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, f"{base}/health", START_TIMEOUT_S, f"Open WebUI (log: {data_dir / 'open-webui.log'})")
        token = httpx.post(f"{base}/api/v1/auths/signin", json={"email": "", "password": ""}).json()["token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=180) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
