"""Rate limiting: a token bucket per API key or client address (LocalLab's 60 a minute, bursts of 10)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_CLIENTS = 10_000


class RateLimiter:
    """``per_minute`` requests a minute on average, up to ``burst`` at once, for each client."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(burst, 1)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, client: str) -> float:
        """Take a token for ``client``; return 0 when allowed, else the seconds until one is free."""
        now = time.monotonic()
        tokens = self._tokens(self._buckets.pop(client, None), now)
        wait = self._wait(tokens)
        if not wait:
            tokens -= 1
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait

    def wait(self, client: str) -> float:
        """The seconds until ``client`` has a token (0 when it has one now), taking none."""
        return self._wait(self._tokens(self._buckets.get(client), time.monotonic()))

    def _tokens(self, bucket: tuple[float, float] | None, now: float) -> float:
        if bucket is None:
            return float(self.burst)
        tokens, stamp = bucket
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def _wait(self, tokens: float) -> float:
        if tokens >= 1:
            return 0.0
        return (1 - tokens) / self.rate if self.rate > 0 else math.inf
