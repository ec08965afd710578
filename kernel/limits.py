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
        tokens, stamp = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate if self.rate > 0 else math.inf
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait
