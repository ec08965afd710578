"""Wire formats of llama-server's own routes (``/completion``, ``/tokenize``, ``/props`` ...), as llamactl
serves them under ``/llama-cpp/{name}/``. Unknown request fields are ignored, as llama-server ignores
them (its web UI sends many)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from kernai.capabilities import ChatMessage, Tool
from kernai.http.wire import Int64, NonNegativeInt


def llama_server_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    """llama-server's error body: ``{"error": {"code": 400, "message": ..., "type": ...}}``."""
    return {"error": {"code": status, "message": message, "type": type_}}


class SamplingWire(Struct, kw_only=True):
    """The sampling fields ``/completion`` and ``/infill`` share: ``n_predict`` -1 generates until the end
    or the context is full; ``seed`` -1 is random."""

    n_predict: Int64 = -1
    temperature: float | None = None
    top_k: Int64 | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: Int64 | None = None
    stream: bool = False


class CompletionWire(SamplingWire, kw_only=True):
    """``prompt`` is text or token ids."""

    prompt: str | list[Int64]
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    n_probs: NonNegativeInt = 0
    cache_prompt: bool = True


class InputExtra(Struct):
    filename: str = ""
    text: str = ""


class InfillWire(SamplingWire, kw_only=True):
    """Fill in the middle: the model writes what goes between ``input_prefix`` (after the files of
    ``input_extra`` and before ``prompt``) and ``input_suffix``."""

    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[InputExtra] = field(default_factory=list)
    prompt: str = ""


class Timings(Struct):
    prompt_n: int
    prompt_ms: float
    prompt_per_token_ms: float
    prompt_per_second: float
    predicted_n: int
    predicted_ms: float
    predicted_per_token_ms: float
    predicted_per_second: float


class TokenProbability(Struct, kw_only=True, omit_defaults=True):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TokenProbability] | None = None


class CompletionAnswer(Struct, kw_only=True):
    """The answer of ``/completion`` (and the last event of its stream)."""

    index: int = 0
    content: str
    tokens: list[int] = field(default_factory=list)
    id_slot: int = 0
    stop: bool = True
    model: str
    tokens_predicted: int
    tokens_evaluated: int
    generation_settings: dict[str, Any]
    prompt: str
    has_new_line: bool
    truncated: bool = False
    stop_type: str
    """``eos``, ``word`` or ``limit``."""
    stopped_eos: bool
    stopped_word: bool
    stopped_limit: bool
    stopping_word: str
    tokens_cached: int = 0
    timings: Timings
    completion_probabilities: list[TokenProbability] | None = None


class PartialCompletion(Struct, kw_only=True):
    """One event of a ``/completion`` stream before the last."""

    index: int = 0
    content: str
    tokens: list[int] = field(default_factory=list)
    stop: bool = False
    id_slot: int = 0
    tokens_predicted: int
    tokens_evaluated: int
    completion_probabilities: list[TokenProbability] | None = None


class TokenizeWire(Struct, kw_only=True):
    content: str
    add_special: bool = False
    with_pieces: bool = False


class TokenPiece(Struct):
    id: int
    piece: str


class TokenizeAnswer(Struct):
    tokens: list[int | TokenPiece]


class DetokenizeWire(Struct, kw_only=True):
    tokens: list[Int64]


class DetokenizeAnswer(Struct):
    content: str


class EmbeddingsWire(Struct, kw_only=True):
    """``content`` (or OpenAI's ``input``): one text or several."""

    content: str | list[str] | None = None
    input: str | list[str] | None = None


class EmbeddingItem(Struct):
    index: int
    embedding: list[list[float]]


class RerankWire(Struct, kw_only=True):
    query: str
    documents: list[str]
    top_n: NonNegativeInt | None = None


class RerankItem(Struct):
    index: int
    relevance_score: float


class RerankAnswer(Struct):
    model: str
    results: list[RerankItem]
    object: str = "list"
    usage: dict[str, int] = field(default_factory=dict)


class ApplyTemplateWire(Struct, kw_only=True):
    """The messages (and tools) of a chat request, rendered by the model's chat template as chat would."""

    messages: list[ChatMessage]
    tools: list[Tool] | None = None
    add_generation_prompt: bool = True


class ApplyTemplateAnswer(Struct):
    prompt: str


class Props(Struct, kw_only=True):
    default_generation_settings: dict[str, Any]
    total_slots: int
    model_path: str
    chat_template: str
    n_ctx: int
    modalities: dict[str, bool]
    build_info: str


class Slot(Struct, kw_only=True):
    """One generation slot: llama-server's fields, and the token counts the engine reports."""

    id: int
    n_ctx: int
    is_processing: bool
    params: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_tokens: int = 0
