"""``lingxi up``: the same code ./scripts/run runs. All seven services on free ports, then Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.registry import SERVICES
from tests.conftest import free_port, world_readable_tmpdir


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_starts_every_service_prints_health_and_ctrl_c_stops_everything():
    ports = {name: free_port() for name in SERVICES}
    env = {**os.environ, **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()}}
    env["LINGXI_PG_PORT"] = str(free_port())
    data_dir = world_readable_tmpdir("lingxi-up-")
    up = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir), "--wait", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            output.append(line)
            if "lingxi is up" in line:
                break
        text = "".join(output)
        assert "lingxi is up" in text, text
        for name, port in ports.items():
            assert f"{name:<10} {port:>5}" in text
            assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=5).status_code == 200
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code in (200, 503)
        children = children_of(up.pid)
        assert len(children) >= len(SERVICES)
        postgres_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        assert alive(postgres_pid)
    finally:
        up.send_signal(signal.SIGINT)
        rest = up.communicate(timeout=60)[0]
    assert "all stopped" in rest
    assert up.returncode == 0
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []
    assert not alive(postgres_pid)
