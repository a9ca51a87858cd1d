"""llama.cpp's decode threads follow how busy the machine is: all idle cores, never fewer than one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from llm.engines import cpu_threads
from llm.engines.cpu_threads import ThreadChooser


def test_threads_are_the_cores_others_leave_idle(monkeypatch):
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: 2)
    readings = iter(
        [
            (0, 0, 0),
            (100, 200, 100),  # 2 cores for 100 ticks: we used 100, nobody else anything
            (250, 400, 150),  # others took 100 of the 200: one core
            (330, 600, 230),  # others took nothing
        ]
    )
    chooser = ThreadChooser(most=2, period_s=0, read=lambda: next(readings))
    assert [chooser.threads() for _ in range(4)] == [2, 2, 1, 2]


def test_a_core_busy_beside_us_is_not_offered_to_llama_cpp():
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core: nothing to leave to another process")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        chooser = ThreadChooser(most=cores, period_s=0)
        chooser.threads()
        time.sleep(1.0)
        assert chooser.threads() <= cores - 1
    finally:
        hog.kill()
        hog.wait()
