"""Pieces every inference surface shares: defaults from the model config, ids, SSE streaming."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import msgspec
from litestar.response import Stream

from kernai.capabilities import Capability, Chunk, ResponseFormat, Sampling
from kernai.config import ModelParameters
from kernai.errors import BackendError, InvalidRequest, KernaiError
from kernai.manager import ModelManager

log = logging.getLogger(__name__)

_json = msgspec.json.Encoder()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def pick_model(manager: ModelManager, name: str | None, capability: Capability) -> str:
    """``name``, or the only configured model with ``capability`` when the client named none."""
    if name:
        return name
    candidates = [model.name for model in manager.models.values() if model.supports(capability)]
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidRequest(
        f"Missing 'model': name one of the {capability.value} models "
        f"({', '.join(candidates) or 'none configured'})",
        param="model",
    )


def stop_list(stop: str | list[str] | None) -> list[str]:
    """A wire format's ``stop`` (one string or a list) as a list; :mod:`kernai.checks` checks it."""
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def sampling_with_defaults(defaults: ModelParameters, **given: Any) -> Sampling:
    """A :class:`Sampling` from the request's values, falling back to the model config's ``parameters``."""
    values = {key: value for key, value in given.items() if value is not None}
    for key in (
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "seed",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    ):
        if key not in values and (default := getattr(defaults, key)) is not None:
            values[key] = default
    return Sampling(**values)


def response_format(kind: str | None, schema: dict[str, Any] | None) -> ResponseFormat | None:
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object", schema=schema)
    if kind == "json_schema":
        if not schema:
            raise InvalidRequest("response_format json_schema needs a 'schema'", param="response_format")
        return ResponseFormat(type="json_schema", schema=schema)
    raise InvalidRequest(f"Unknown response_format type '{kind}'", param="response_format")


async def prefetch(chunks: AsyncGenerator[Chunk, None]) -> AsyncGenerator[Chunk, None]:
    """Wait for the first chunk before the response starts, so an early error is still a 4xx/5xx."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None

    async def rest() -> AsyncGenerator[Chunk, None]:
        try:
            if first is not None:
                yield first
                async for chunk in chunks:
                    yield chunk
        finally:
            await chunks.aclose()

    return rest()


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is already bytes."""
    payload = data if isinstance(data, bytes) else _json.encode(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


class EventStream(Stream):
    """A :class:`Stream` that keeps its own media type.

    Litestar 2 lets the handler's default media type (JSON, for handlers that return either a
    struct or a stream) override the one set on a returned ``Stream``; SSE clients need
    ``text/event-stream``.
    """

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


def openai_error_event(error: KernaiError) -> bytes:
    """An error that happens after a stream started, as OpenAI sends it: one ``data: {"error": ...}``."""
    return sse_event(
        {
            "error": {
                "message": error.message,
                "type": error.error_type,
                "param": error.param,
                "code": error.code,
            }
        }
    )


def sse_response(
    events: AsyncGenerator[bytes, None], error_event: Callable[[KernaiError], bytes] = openai_error_event
) -> Stream:
    """Stream ``events``; an error after the first byte becomes a final ``error_event``.

    When the client goes away, ``events`` is closed at once, which cancels the work in the worker.
    """

    async def guarded() -> AsyncGenerator[bytes, None]:
        async with aclosing(events):
            try:
                async for event in events:
                    yield event
            except KernaiError as error:
                yield error_event(error)
            except Exception as error:  # a bug must not leave the client hanging on a half stream
                log.exception("stream failed")
                yield error_event(BackendError(f"Internal server error: {type(error).__name__}"))

    return EventStream(
        guarded(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
