"""What keeps ``lingxi up``'s processes running: each started again when it dies.

A process that exits while ``up`` is not stopping is started again after a pause that doubles from
1 s to 30 s (back to 1 s once it has stayed up a minute). One that dies 5 times within 2 minutes is
left down with a message naming its log. ``up`` writes what it supervises to ``lingxi-up.json`` in
the data dir, which ``lingxi health`` reads for its ``restarts`` column.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.postgres import LocalPostgres
from services.uplock import STATE_FILE, up_is_running

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # up this long: the next crash waits FIRST_BACKOFF_S again
CRASH_LIMIT = 5  # crashes within CRASH_WINDOW_S: left down
CRASH_WINDOW_S = 120.0

Say = Callable[[str], None]


# --- restarts ---------------------------------------------------------------------------------
def describe_exit(code: int | None) -> str:
    if code is None:
        return "is gone"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Restarts:
    """When a crashed process is started again, and when it is left down."""

    count: int = 0
    backoff_s: float = FIRST_BACKOFF_S
    up_since: float = field(default_factory=time.monotonic)
    crashes: deque[float] = field(default_factory=deque)
    due: float | None = None  # when the next start is due; None while it runs (or once given up)
    given_up: bool = False

    def crashed(self, now: float) -> float | None:
        """Note a crash; returns the pause before the next start, or None when it is to be left down."""
        if now - self.up_since >= STABLE_S:
            self.backoff_s = FIRST_BACKOFF_S
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > CRASH_WINDOW_S:
            self.crashes.popleft()
        if len(self.crashes) >= CRASH_LIMIT:
            self.given_up, self.due = True, None
            return None
        pause = self.backoff_s
        self.due = now + pause
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
        return pause

    def started(self, now: float) -> None:
        self.up_since, self.due = now, None


class Process(Protocol):
    """One thing ``up`` keeps running."""

    name: str
    log_path: Path

    def start(self) -> None: ...

    def exit_code(self) -> int | None:
        """None while it runs; its exit code (or -1) once it is gone."""
        ...

    def terminate(self) -> None:
        """Ask it to stop (without waiting)."""
        ...

    def stop(self, timeout_s: float) -> None:
        """Stop it, waiting at most ``timeout_s`` before killing it."""
        ...

    def describe(self) -> dict[str, Any]: ...


class ServiceProcess:
    """One service, ``python -m services.cli serve <name>``, its output appended to its log file."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches `up` only; it stops the children in order
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float) -> None:
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=max(0.1, timeout_s))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def describe(self) -> dict[str, Any]:
        return {"pid": self.process.pid if self.process else None}


class PostgresProcess:
    """The project-local PostgreSQL cluster, watched through its postmaster's pid."""

    name = "postgres"

    def __init__(self, database: LocalPostgres) -> None:
        self.database = database
        self.log_path = database.log_file

    def start(self) -> None:
        self.database.start()

    def exit_code(self) -> int | None:
        return None if self.database.postmaster_alive() else -1

    def terminate(self) -> None:
        pass  # it stops last, in ``stop``: the services may still write while they finish

    def stop(self, timeout_s: float) -> None:
        self.database.stop()

    def describe(self) -> dict[str, Any]:
        return {"pid": self.database.postmaster_pid(), "port": self.database.port}


@dataclass
class Supervised:
    process: Process
    restarts: Restarts = field(default_factory=Restarts)
    message: str = ""

    @property
    def state(self) -> str:
        if self.restarts.given_up:
            return "down"
        return "restarting" if self.restarts.due is not None else "running"


class Supervisor:
    """Starts its processes, and on each ``tick`` starts again those that died (see the module's rules)."""

    def __init__(self, processes: Sequence[Process], state_file: Path, say: Say) -> None:
        self.units = {process.name: Supervised(process) for process in processes}
        self.state_file = state_file
        self.say = say

    def start_all(self) -> None:
        for unit in self.units.values():
            unit.process.start()
            unit.restarts.started(time.monotonic())
        self.write_state()

    def tick(self) -> None:
        changed = False
        for name, unit in self.units.items():
            now = time.monotonic()
            if unit.restarts.given_up:
                continue
            if unit.restarts.due is None:
                code = unit.process.exit_code()
                if code is not None:
                    self._crashed(name, unit, describe_exit(code) if name != "postgres" else "is gone (postmaster)")
                    changed = True
            elif now >= unit.restarts.due:
                try:
                    unit.process.start()
                except (OSError, RuntimeError) as exc:  # PostgreSQL that does not come up
                    self._crashed(name, unit, f"did not start: {str(exc).splitlines()[0] if str(exc) else exc}")
                else:
                    unit.restarts.count += 1
                    unit.restarts.started(now)
                    unit.message = ""
                    self.say(f"{name} started again (restart {unit.restarts.count})")
                changed = True
        if changed:
            self.write_state()

    def _crashed(self, name: str, unit: Supervised, what: str) -> None:
        pause = unit.restarts.crashed(time.monotonic())
        log = unit.process.log_path.absolute()
        if pause is None:
            unit.message = (
                f"{name} {what}: it crashed {CRASH_LIMIT} times within {CRASH_WINDOW_S:.0f} s, so it is left down; "
                f"see its log: {log}"
            )
            self.say(unit.message)
        else:
            unit.message = f"{what}; starting again in {pause:.0f} s"
            self.say(f"{name} {what}; starting it again in {pause:.0f} s (log: {log})")

    def stop_all(self, grace_s: float) -> None:
        """SIGTERM to every service at once, then wait for each, killing what outlives ``grace_s``;
        PostgreSQL (started first) stops last, once no service uses it."""
        for unit in self.units.values():
            unit.process.terminate()
        deadline = time.monotonic() + grace_s
        for unit in reversed(self.units.values()):
            unit.process.stop(deadline - time.monotonic())

    def given_up(self, name: str) -> bool:
        return self.units[name].restarts.given_up

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """name → pid, state (running, restarting, down), restarts, message, log."""
        return {
            name: {
                **unit.process.describe(),
                "state": unit.state,
                "restarts": unit.restarts.count,
                "message": unit.message,
                "log": str(unit.process.log_path.absolute()),
            }
            for name, unit in self.units.items()
        }

    def write_state(self) -> None:
        state = {"pid": os.getpid(), "processes": self.snapshot()}
        partial = self.state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(state, indent=2))
        partial.replace(self.state_file)


def read_state(data_dir: Path) -> dict[str, dict[str, Any]]:
    """What the ``lingxi up`` running over ``data_dir`` supervises (name → pid, state, restarts, log);
    empty when none runs."""
    if not up_is_running(data_dir):
        return {}
    try:
        return dict(json.loads((data_dir / STATE_FILE).read_text())["processes"])
    except (OSError, ValueError, KeyError):
        return {}
