"""What keeps two ``lingxi up`` runs apart: one run per data dir (a ``flock``), and free ports
before anything starts, with the process holding a taken one named."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Any

LOCK_FILE = "lingxi-up.lock"
STATE_FILE = "lingxi-up.json"


class AlreadyRunning(RuntimeError):
    """Another ``lingxi up`` holds the data dir, or another process one of the ports."""


# --- one run per data dir ---------------------------------------------------------------------
class UpLock:
    """An exclusive ``flock`` on ``<data dir>/lingxi-up.lock``, which holds the pid of its holder.
    The kernel drops it when the process ends, however it ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self.file: Any = None

    def __enter__(self) -> UpLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")  # noqa: SIM115 (held open for the whole run)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "?"
            file.close()
            raise AlreadyRunning(
                f"another `lingxi up` (pid {holder}) is running over {self.path.parent.absolute()}; "
                f"stop it first (Ctrl-C in its terminal, or kill {holder}) or use another --data-dir"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self.file = file
        return self

    def __exit__(self, *_: object) -> None:
        (self.path.parent / STATE_FILE).unlink(missing_ok=True)
        self.file.close()


def up_is_running(data_dir: Path) -> bool:
    """Whether a ``lingxi up`` holds ``data_dir`` now (so that its state file is current)."""
    try:
        with open(data_dir / LOCK_FILE) as file:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


# --- free ports -------------------------------------------------------------------------------
def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no holder
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Which process listens on ``port``: "pid N (command line)", from /proc (Linux; as root any user's)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if not any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                continue
            command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        return f"pid {fd_dir.parent.name} ({command[:120]})"
    return "another process"


def check_ports(ports: dict[str, int]) -> None:
    """Refuse, naming the holders, if any of the ports (label → port) is taken."""
    taken = [
        f"port {port} ({label}) is held by {port_holder(port)}"
        for label, port in ports.items()
        if not port_is_free(port)
    ]
    if taken:
        raise AlreadyRunning(
            "cannot start: " + "; ".join(taken) + ". Is another `lingxi up` running? Stop it, or set other ports "
            "(<SERVICE>_PORT, LINGXI_PG_PORT)."
        )
