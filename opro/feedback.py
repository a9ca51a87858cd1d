"""The feedback JSONL: one complete line per event, even under concurrent requests.

Each line is written with a single ``os.write`` on an ``O_APPEND`` descriptor, under a lock, so lines
never interleave within this process, nor with other processes appending small lines to the same file.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any


class FeedbackLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _append(self, line: bytes) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    async def record(self, event: str, **fields: Any) -> None:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        await asyncio.to_thread(self._append, line)
