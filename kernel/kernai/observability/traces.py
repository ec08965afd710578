"""A bounded ring of recent traces (requests and responses, or backend calls)."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any


class TraceRing:
    """The last ``size`` traces, oldest first; each gets an increasing ``id``."""

    def __init__(self, size: int) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=max(size, 1))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, trace: dict[str, Any]) -> None:
        with self._lock:
            self._items.append({"id": next(self._ids), **trace})

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count
