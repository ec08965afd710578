"""What one served request leaves behind: inference metrics and a backend trace."""

from __future__ import annotations

import time
from typing import Any

from kernai.capabilities import Request, capability_of
from kernai.manager.model import ManagedModel
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing


class Recorder:
    """Records each request a model served in the metrics and the ring of backend traces."""

    def __init__(self, metrics: Metrics, traces: TraceRing) -> None:
        self.metrics = metrics
        self.traces = traces

    def first_chunk(self, model: ManagedModel, seconds: float) -> None:
        """A stream's first chunk came ``seconds`` after the request reached the worker."""
        self.metrics.time_to_first_token.labels(model.name).observe(seconds)

    def finished(
        self,
        model: ManagedModel,
        request: Request,
        begun: float,
        usage: Any,
        error: BaseException | None,
        first_chunk: float | None = None,
    ) -> None:
        """A request that began at ``begun`` (``time.perf_counter``) ended, with ``usage`` or ``error``;
        ``first_chunk``, for a stream, is when its first chunk came."""
        seconds = time.perf_counter() - begun
        capability = capability_of(request).value
        self.metrics.inference.labels(model.name, capability).observe(seconds)
        if usage is not None:
            self.metrics.prompt_tokens.labels(model.name).inc(usage.prompt_tokens)
            self.metrics.completion_tokens.labels(model.name).inc(usage.completion_tokens)
        trace: dict[str, Any] = {
            "time": time.time(),
            "model": model.name,
            "backend": model.config.backend,
            "capability": capability,
            "stream": first_chunk is not None or bool(getattr(request, "stream", False)),
            "duration_ms": round(seconds * 1000, 2),
            "prompt_tokens": usage.prompt_tokens if usage is not None else None,
            "completion_tokens": usage.completion_tokens if usage is not None else None,
            "error": (getattr(error, "message", None) or repr(error)) if error is not None else None,
        }
        if first_chunk is not None:
            trace["time_to_first_token_ms"] = round((first_chunk - begun) * 1000, 2)
        self.traces.add(trace)
