"""Per model, the tokens of the requests it served: running totals, the last request and the ones in
flight (LocalAI's ``/tokenMetrics``, llama-server's ``/metrics``)."""

from __future__ import annotations

import time

from msgspec import Struct, field


class RequestTokens(Struct, kw_only=True):
    """One request's tokens. While it runs, ``generated_tokens`` counts the chunks streamed so far (one
    per token for the text backends); when it ends, the backend's usage replaces the counts."""

    capability: str
    started: float
    """Unix time."""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token_ms: float | None = None
    """Streams only: when the first chunk came."""
    tokens_per_second: float | None = None
    """Generated tokens per second of generation (after the first token, for a stream)."""
    duration_ms: float | None = None


class ModelTokens(Struct, kw_only=True):
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    """Time to the first token, summed over the streams."""
    generation_seconds: float = 0.0
    last: RequestTokens | None = None
    active: list[RequestTokens] = field(default_factory=list)


class TokenLedger:
    """Token facts per model name, kept in memory."""

    def __init__(self) -> None:
        self.models: dict[str, ModelTokens] = {}

    def of(self, model: str) -> ModelTokens:
        return self.models.setdefault(model, ModelTokens())

    def begin(self, model: str, capability: str) -> RequestTokens:
        entry = RequestTokens(capability=capability, started=time.time())
        self.of(model).active.append(entry)
        return entry

    @staticmethod
    def chunk(entry: RequestTokens, seconds_since_start: float) -> None:
        """A stream's chunk came, ``seconds_since_start`` after the request reached the worker."""
        if entry.time_to_first_token_ms is None:
            entry.time_to_first_token_ms = round(seconds_since_start * 1000, 3)
        entry.generated_tokens += 1

    def end(
        self,
        model: str,
        entry: RequestTokens,
        prompt_tokens: int | None,
        generated_tokens: int | None,
        seconds: float,
    ) -> None:
        """The request took ``seconds`` in all; its usage, when the backend reported one."""
        if prompt_tokens is not None:
            entry.prompt_tokens = prompt_tokens
        if generated_tokens is not None:
            entry.generated_tokens = generated_tokens
        first = (entry.time_to_first_token_ms or 0.0) / 1000
        generating = max(seconds - first, 0.0)
        entry.duration_ms = round(seconds * 1000, 3)
        if entry.generated_tokens and generating > 0:
            entry.tokens_per_second = round(entry.generated_tokens / generating, 3)
        tokens = self.of(model)
        # by identity: two requests in flight may be equal field for field
        tokens.active = [running for running in tokens.active if running is not entry]
        tokens.requests += 1
        tokens.prompt_tokens += entry.prompt_tokens
        tokens.generated_tokens += entry.generated_tokens
        tokens.prompt_seconds += first
        tokens.generation_seconds += generating
        tokens.last = entry
