"""How many threads a llama.cpp decode should use: the cores that other processes leave idle.

llama.cpp's worker threads spin while they wait for each other, so a decode on as many threads as
cores runs fast on a quiet machine and far slower than one thread when another process holds a
core. ``ThreadChooser`` reads the machine's CPU time (``/proc/stat``) and this process's own
(``/proc/self/stat``) at most every ``period_s``: the cores that others kept busy since the last
look are not offered to llama.cpp. Where ``/proc`` is missing it answers ``most``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def own_ticks() -> int:
    """CPU ticks this process has used (user + system, all threads)."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def read_ticks() -> tuple[int, int, int]:
    """(machine busy, machine total, this process) CPU ticks."""
    busy, total = machine_ticks()
    return busy, total, own_ticks()


class ThreadChooser:
    def __init__(self, most: int, period_s: float = 0.5, read: Callable[[], tuple[int, int, int]] = read_ticks) -> None:
        self.most = max(1, most)
        self.period_s = period_s
        self.read = read
        self.current = self.most
        self.checked = 0.0
        self.last: tuple[int, int, int] | None = None

    def threads(self) -> int:
        now = time.monotonic()
        if now - self.checked < self.period_s:
            return self.current
        self.checked = now
        try:
            busy, total, own = self.read()
        except (OSError, ValueError, IndexError):
            return self.current
        if self.last is not None and total > self.last[1]:
            others = max(0, (busy - self.last[0]) - (own - self.last[2]))
            cores = os.cpu_count() or self.most
            idle_cores = cores * (1 - others / (total - self.last[1]))
            self.current = min(self.most, max(1, round(idle_cores)))
        self.last = (busy, total, own)
        return self.current
