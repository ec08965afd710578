"""LocalLab's wire formats: ``/generate``, ``/chat``, ``/generate/batch``; ``/models/*``, ``/health``,
``/system/info``.

Requests take LocalLab's fields (``prompt``, ``model_id``, ``stream``, ``max_length``,
``temperature``, ``top_p``) and the ones its later releases added (``max_tokens``, ``top_k``,
``repetition_penalty``, ``system_prompt``).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kernai.http.wire import NonNegativeInt, PositiveInt


class SamplingFields(Struct, kw_only=True, omit_defaults=True):
    model_id: str | None = None
    max_length: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    max_new_tokens: PositiveInt | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: NonNegativeInt | None = None
    repetition_penalty: Annotated[float, Meta(ge=0)] | None = None
    system_prompt: str | None = None

    @property
    def limit(self) -> int | None:
        """The token limit, whichever of LocalLab's spellings the client used."""
        return self.max_length or self.max_tokens or self.max_new_tokens


class GenerateRequest(SamplingFields):
    prompt: str
    stream: bool = False


class ChatMessage(Struct, kw_only=True):
    role: Annotated[str, Meta(min_length=1)]
    content: str


class ChatRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    stream: bool = False


class BatchRequest(SamplingFields):
    prompts: Annotated[list[str], Meta(min_length=1, max_length=64)]


class GenerateResponse(Struct, kw_only=True):
    text: str
    model: str


class Usage(Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoice(Struct, kw_only=True):
    message: ChatMessage
    index: int
    finish_reason: str


class ChatResponse(Struct, kw_only=True):
    choices: list[ChatChoice]
    model: str
    usage: Usage


class Delta(Struct, kw_only=True, omit_defaults=True):
    content: str
    role: str | None = None


class ChatChunkChoice(Struct, kw_only=True):
    delta: Delta
    index: int
    finish_reason: str | None


class ChatChunk(Struct, kw_only=True):
    """One line of a streamed ``/chat`` answer (newline-delimited JSON)."""

    choices: list[ChatChunkChoice]
    model: str


class BatchResponse(Struct, kw_only=True):
    responses: list[str]


# --- models and system --------------------------------------------------------------------------


class LoadRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    model_id: str


class UnloadRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    model_id: str | None = None


class ModelAction(Struct):
    status: str
    message: str
    model_id: str | None


class CurrentModel(Struct):
    model_id: str | None
    is_loaded: bool
    status: str
    backend: str | None = None
    load_seconds: float | None = None


class Health(Struct):
    status: str
    model: str | None
    version: str


class SystemInfo(Struct):
    version: str
    cpu_usage: float
    memory_usage: float
    memory_total: int
    memory_available: int
    active_model: str | None
    loaded_models: list[str]
    uptime: float
    request_count: int
    gpu_info: list[dict[str, str]] | None = None
