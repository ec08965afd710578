"""The checks every capability request gets once, whatever surface it came through.

Surfaces translate their wire formats into the capability structs; what must hold for any of them
(tools and ``tool_choice``, sampling ranges, stop sequences, a non-empty embeddings input) is checked
here, on the shared struct, by the model manager before a worker sees the request. So
``/v1/chat/completions``, ``/v1/responses`` and ``/v1/messages`` answer the same request the same way,
each in its own error format.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kernai import capabilities as cap
from kernai.errors import InvalidRequest

MAX_STOP_SEQUENCES = 16
RANGES: dict[str, tuple[float | None, float | None]] = {
    # the widest range any surface documents (OpenAI's); a surface's wire struct may be stricter
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "top_k": (0, None),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
    "repeat_penalty": (0.0, None),
    "max_tokens": (1, None),
}


def checked(request: cap.Request) -> cap.Request:
    """``request`` as backends may rely on it: refused with :class:`InvalidRequest` (400) where no
    backend could serve it as asked, normalised where surfaces may differ (empty stop sequences go;
    ``tool_choice: none`` sends no tools)."""
    if isinstance(request, cap.ChatRequest):
        sampling = _sampling(request.sampling)
        choice = _tool_choice(request.tool_choice, request.tools)
        tools = None if choice == "none" else request.tools
        return msgspec.structs.replace(request, sampling=sampling, tool_choice=choice, tools=tools)
    if isinstance(request, cap.CompletionRequest):
        return msgspec.structs.replace(request, sampling=_sampling(request.sampling))
    if isinstance(request, cap.EmbeddingsRequest) and not request.input:
        raise InvalidRequest("input must not be empty", param="input")  # an engine decodes no batch
    return request


def _sampling(sampling: cap.Sampling) -> cap.Sampling:
    for name, (low, high) in RANGES.items():
        value = getattr(sampling, name)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidRequest(f"{name} must be {bounds}, got {value}", param=name)
    stops = [stop for stop in sampling.stop if stop]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"At most {MAX_STOP_SEQUENCES} stop sequences, got {len(stops)}", param="stop")
    return sampling if stops == sampling.stop else msgspec.structs.replace(sampling, stop=stops)


def _tool_choice(
    choice: str | dict[str, Any] | None, tools: list[cap.Tool] | None
) -> str | dict[str, Any] | None:
    """The choice in the kernel's one form: ``auto``, ``none``, ``required`` or
    ``{"type": "function", "function": {"name": NAME}}`` naming one of ``tools``."""
    if choice in (None, "auto", "none"):
        return choice
    names = [tool.function.name for tool in tools or []]
    if choice == "required":
        if not names:
            raise InvalidRequest("tool_choice 'required' needs tools", param="tool_choice")
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            "tool_choice must be auto, none, required or a function by name", param="tool_choice"
        )
    if name not in names:
        known = ", ".join(names) or "none given"
        raise InvalidRequest(
            f"tool_choice names an unknown tool '{name}' (tools: {known})", param="tool_choice"
        )
    return {"type": "function", "function": {"name": name}}
