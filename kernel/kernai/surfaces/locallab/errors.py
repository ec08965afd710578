"""LocalLab's error body, FastAPI's: ``{"detail": "..."}``."""

from __future__ import annotations

from typing import Any


def detail_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"detail": message}
