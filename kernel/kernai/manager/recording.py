"""What one served request leaves behind: inference metrics, a backend trace and its tokens."""

from __future__ import annotations

import time
from typing import Any

from kernai.capabilities import Request, capability_of
from kernai.manager.model import ManagedModel
from kernai.manager.token_ledger import RequestTokens, TokenLedger
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing


class Recorder:
    """Records each request a model served in the metrics, the ring of backend traces and the token
    ledger."""

    def __init__(self, metrics: Metrics, traces: TraceRing) -> None:
        self.metrics = metrics
        self.traces = traces
        self.tokens = TokenLedger()

    def started(self, model: ManagedModel, request: Request) -> RequestTokens:
        """A request reached the model's worker: its entry among the model's active requests."""
        return self.tokens.begin(model.name, capability_of(request).value)

    def chunk(self, model: ManagedModel, entry: RequestTokens, seconds: float) -> None:
        """A stream's chunk came ``seconds`` after the request reached the worker; the first one's time is
        the stream's time to first token."""
        if entry.time_to_first_token_ms is None:
            self.metrics.time_to_first_token.labels(model.name).observe(seconds)
        self.tokens.chunk(entry, seconds)

    def finished(
        self,
        model: ManagedModel,
        request: Request,
        begun: float,
        usage: Any,
        error: BaseException | None,
        entry: RequestTokens,
        first_chunk: float | None = None,
    ) -> None:
        """A request that began at ``begun`` (``time.perf_counter``) ended, with ``usage`` or ``error``;
        ``entry`` is what :meth:`started` gave; ``first_chunk``, for a stream, is when its first chunk
        came."""
        seconds = time.perf_counter() - begun
        self.tokens.end(
            model.name,
            entry,
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
            seconds,
        )
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
