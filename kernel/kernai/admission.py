"""A fair, bounded queue in front of one model: ``parallel`` requests run, ``queue_size`` wait, more are
refused."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from kernai.errors import ModelUnavailable


class Admission:
    """First come, first served (``asyncio.Semaphore`` wakes its waiters in order)."""

    def __init__(self, name: str, parallel: int, queue_size: int, on_full: Callable[[], None]) -> None:
        self.name = name
        self.parallel = parallel
        self.queue_size = queue_size
        self.on_full = on_full
        """Called for each request refused because the queue is full (counted in the metrics)."""
        self._slots = asyncio.Semaphore(parallel)
        self.running = 0
        self.waiting = 0
        self._average = 1.0

    @property
    def idle(self) -> bool:
        return self.running == 0 and self.waiting == 0

    def retry_after(self) -> int:
        """Seconds until a slot is likely free, from the average request time so far."""
        return max(1, math.ceil(self._average * (self.waiting + 1) / self.parallel))

    def record(self, seconds: float) -> None:
        self._average = 0.8 * self._average + 0.2 * seconds

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the model's slots for the duration of a request; 503 when the queue is full."""
        if self._slots.locked() and self.waiting >= self.queue_size:
            self.on_full()
            raise ModelUnavailable(
                f"Model '{self.name}' is busy: {self.running} running and {self.waiting} queued requests",
                retry_after=self.retry_after(),
                code="queue_full",
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
