"""A project-local PostgreSQL cluster from the system's server binaries (``initdb`` into a data dir).

Used by ``lingxi up`` (data under ``.data/postgres``) and by the tests (a throw-away cluster).
PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres`` user.
The cluster uses the ``C.UTF-8`` locale so that pg_trgm treats CJK characters as word characters.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

SERVER_USER = "postgres"


def find_bin_dir() -> Path:
    configured = os.environ.get("LINGXI_PG_BIN")
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) "
        "or set LINGXI_PG_BIN to the directory holding initdb and pg_ctl"
    )


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class LocalPostgres:
    def __init__(self, data_dir: Path, port: int = 55432, database: str = "lingxi", user: str = "lingxi") -> None:
        self.bin_dir = find_bin_dir()
        self.port = port
        self.database = database
        self.user = user
        self.data_dir = self._reachable(Path(data_dir).absolute())
        self.socket_dir = self.data_dir.parent / (self.data_dir.name + "-socket")
        self.log_file = self.data_dir.parent / (self.data_dir.name + ".log")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if _as_root():
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def _reachable(self, data_dir: Path) -> Path:
        """As root, the server user must be able to reach the data dir; otherwise use /var/tmp."""
        if not _as_root():
            return data_dir
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(data_dir.parent)])
        if probe.returncode == 0:
            return data_dir
        digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
        fallback = Path("/var/tmp") / f"lingxi-{digest}" / data_dir.name
        print(f"note: user {SERVER_USER!r} cannot reach {data_dir.parent}; keeping the cluster in {fallback}")
        return fallback

    def _prepare_dirs(self) -> None:
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if _as_root():
            os.chmod(self.data_dir.parent, 0o755)
            for path in (self.data_dir, self.socket_dir, self.log_file):
                shutil.chown(path, SERVER_USER, SERVER_USER)
        os.chmod(self.data_dir, 0o700)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def postmaster_pid(self) -> int | None:
        """The server's pid, from its lock file (None when it is not running or never ran)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def postmaster_alive(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state not in ("Z", "X")  # a zombie is gone, only not yet reaped

    def start(self) -> bool:
        """Start the server (initialising the cluster the first time) and create the database;
        returns False when it was running already."""
        started = False
        self._prepare_dirs()
        if not self.initialized():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "--locale=C.UTF-8",
                "--encoding=UTF8",
                "--auth=trust",
                f"--username={self.user}",
            )
        if not self.running():
            options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
                check=False,
            )
            if result.returncode != 0:
                tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                raise RuntimeError(f"PostgreSQL did not start on port {self.port}:\n{result.stderr}\n{tail}")
            started = True
        self._wait_ready()
        exists = self._run(
            "psql",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",
        )
        if exists.stdout.strip() != "1":
            self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, self.database)
        return started

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready = self._run("pg_isready", "-h", str(self.socket_dir), "-p", str(self.port), check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL on port {self.port} is not accepting connections")

    def stop(self) -> None:
        if self.initialized() and self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)
