"""One generation thread with a bounded waiting line: the in-process engine's only scheduler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from services.errors import TooManyRequests

T = TypeVar("T")


class GenerationWorker:
    """Runs jobs one at a time in a dedicated thread; at most ``queue_size`` wait behind the running one."""

    def __init__(self, queue_size: int, name: str = "vlm-generate") -> None:
        self.capacity = 1 + max(0, queue_size)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.lock = threading.Lock()
        self.pending = 0  # running + waiting

    def check_room(self) -> None:
        """429 now if a job submitted now would not fit (a cheap check before preparing one)."""
        if self.pending >= self.capacity:
            raise TooManyRequests(f"the vlm model is busy ({self.pending - 1} requests already waiting); retry shortly")

    def submit(self, job: Callable[[], T]) -> Future[T]:
        with self.lock:
            self.check_room()
            self.pending += 1
        future = self.executor.submit(job)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: Future) -> None:
        with self.lock:
            self.pending -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
