"""OpenAI wire formats: chat, completions, edits, embeddings."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct, field

from kernai.capabilities import ChatMessage, Tool, ToolCall, ToolCallDelta
from kernai.http.wire import Int64, NonNegativeInt, PositiveInt

Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
ChoiceCount = Annotated[int, Meta(ge=1, le=16)]
ModelName = Annotated[str, Meta(min_length=1)]


class _Wire(Struct, kw_only=True, omit_defaults=True):
    pass


class SamplingFields(_Wire, kw_only=True):
    """The sampling fields shared by chat and completion requests (OpenAI plus llama.cpp extras)."""

    max_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    top_k: NonNegativeInt | None = None
    min_p: Probability | None = None
    repeat_penalty: Annotated[float, Meta(ge=0)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: Int64 | None = None
    stop: str | list[str] | None = None
    logit_bias: dict[str, float] | None = None
    grammar: str | None = None
    n: ChoiceCount = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


class StreamOptions(_Wire, kw_only=True):
    include_usage: bool = False


class JsonSchemaSpec(_Wire, kw_only=True):
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class WireResponseFormat(_Wire, kw_only=True):
    type: str = "text"
    json_schema: JsonSchemaSpec | None = None
    schema: dict[str, Any] | None = None  # llama.cpp server's short form


class ChatCompletionRequest(SamplingFields, kw_only=True):
    model: ModelName
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    max_completion_tokens: PositiveInt | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    response_format: WireResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    """Honoured either way by kernai's backends, which make at most one tool call per turn."""


class CompletionRequestWire(SamplingFields, kw_only=True):
    model: ModelName
    prompt: str | list[str | Int64 | list[Int64]]
    """Text, a list of texts, token ids, or a list of token-id arrays."""
    suffix: str | None = None
    echo: bool = False
    logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    best_of: PositiveInt | None = None
    """Served when it equals ``n`` (the same as leaving it out); other values are a 400."""
    response_format: WireResponseFormat | None = None


class EditRequest(_Wire, kw_only=True):
    model: ModelName
    instruction: str
    input: str = ""
    n: ChoiceCount = 1
    max_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None


class EmbeddingRequestWire(_Wire, kw_only=True):
    model: ModelName
    input: str | list[str | Int64 | list[Int64]]
    encoding_format: str = "float"
    dimensions: PositiveInt | None = None
    user: str | None = None


# --- responses -------------------------------------------------------------------------------------


class PromptTokensDetails(Struct):
    cached_tokens: int = 0


class UsageWire(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = field(default_factory=PromptTokensDetails)


class LogprobsContent(Struct):
    content: list[dict[str, Any]]


class FunctionCallWire(Struct):
    name: str
    arguments: str


class ToolCallWire(Struct):
    """A tool call as OpenAI sends it: every field present, ``type`` included."""

    id: str
    function: FunctionCallWire
    type: str = "function"

    @classmethod
    def of(cls, call: ToolCall) -> ToolCallWire:
        return cls(call.id, FunctionCallWire(call.function.name, call.function.arguments), call.type)


class ToolCallDeltaWire(_Wire, kw_only=True):
    """A streamed tool call; kernai streams each call whole, in one delta."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCallWire | None = None

    @classmethod
    def of(cls, delta: ToolCallDelta) -> ToolCallDeltaWire:
        function = (
            FunctionCallWire(delta.function.name, delta.function.arguments)
            if delta.function is not None
            else None
        )
        return cls(
            index=delta.index,
            id=delta.id,
            type=(delta.type or "function") if delta.id else None,
            function=function,
        )


class AssistantMessage(Struct, kw_only=True, omit_defaults=True):
    """``role`` and ``content`` are always sent (``content`` is null beside tool calls)."""

    role: str
    content: str | None
    tool_calls: list[ToolCallWire] | None = None


class ChatChoice(Struct):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: LogprobsContent | None = None


class ChatCompletion(Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageWire
    object: str = "chat.completion"
    system_fingerprint: str | None = None


class Delta(_Wire, kw_only=True):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDeltaWire] | None = None


class ChatChunkChoice(Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: LogprobsContent | None = None


class ChatCompletionChunk(Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageWire | None = None
    object: str = "chat.completion.chunk"


class CompletionLogprobs(Struct):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(Struct):
    index: int
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None = None


class Completion(Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageWire | None = None
    object: str = "text_completion"


class EditChoice(Struct):
    index: int
    text: str


class Edit(Struct):
    created: int
    choices: list[EditChoice]
    usage: UsageWire
    object: str = "edit"


class EmbeddingData(Struct):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingUsage(Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Struct):
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
    object: str = "list"
