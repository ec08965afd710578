"""Anthropic Messages wire formats (``POST /v1/messages``), requests, responses and stream events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

from kernai.http.wire import NonNegativeInt, PositiveInt

ModelName = Annotated[str, Meta(min_length=1)]


class _In(Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    """Request blocks: unknown fields (``cache_control``, ``citations`` ...) are accepted and ignored."""


class TextBlockParam(_In, tag="text"):
    text: str


class ImageSource(Struct, kw_only=True, omit_defaults=True):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlockParam(_In, tag="image"):
    source: ImageSource


class ToolUseBlockParam(_In, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)


class ToolResultBlockParam(_In, tag="tool_result"):
    tool_use_id: str
    content: str | list[TextBlockParam | ImageBlockParam] | None = None
    is_error: bool = False


class ThinkingBlockParam(_In, tag="thinking"):
    """Sent back by clients in the history; dropped, as a local model cannot verify its signature."""

    thinking: str = ""
    signature: str | None = None


class RedactedThinkingBlockParam(_In, tag="redacted_thinking"):
    data: str = ""


ContentBlockParam = (
    TextBlockParam
    | ImageBlockParam
    | ToolUseBlockParam
    | ToolResultBlockParam
    | ThinkingBlockParam
    | RedactedThinkingBlockParam
)


class MessageParam(Struct, kw_only=True):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockParam]


class ToolParam(Struct, kw_only=True, omit_defaults=True):
    name: Annotated[str, Meta(min_length=1)]
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    description: str | None = None
    type: str | None = None


class ToolChoiceParam(Struct, kw_only=True, omit_defaults=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(Struct, kw_only=True, omit_defaults=True):
    model: ModelName
    messages: Annotated[list[MessageParam], Meta(min_length=1)]
    max_tokens: PositiveInt
    system: str | list[TextBlockParam] | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: NonNegativeInt | None = None
    stream: bool = False
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    service_tier: str | None = None


# --- responses -------------------------------------------------------------------------------------


class _Out(Struct, kw_only=True, tag_field="type"):
    pass


class TextBlock(_Out, tag="text"):
    text: str


class ToolUseBlock(_Out, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]


ContentBlock = TextBlock | ToolUseBlock


class Usage(Struct, kw_only=True):
    input_tokens: int
    output_tokens: int


class Message(Struct, kw_only=True):
    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage
    type: str = "message"
    role: str = "assistant"


# --- stream events (sent with ``event: <type>``) ----------------------------------------------------


class _Event(Struct, kw_only=True, tag_field="type"):
    pass


class MessageStart(_Event, tag="message_start"):
    message: Message


class Ping(_Event, tag="ping"):
    pass


class ContentBlockStart(_Event, tag="content_block_start"):
    index: int
    content_block: ContentBlock


class TextDelta(_Out, tag="text_delta"):
    text: str


class InputJsonDelta(_Out, tag="input_json_delta"):
    partial_json: str


class ContentBlockDelta(_Event, tag="content_block_delta"):
    index: int
    delta: TextDelta | InputJsonDelta


class ContentBlockStop(_Event, tag="content_block_stop"):
    index: int


class MessageDeltaBody(Struct, kw_only=True):
    stop_reason: str | None
    stop_sequence: str | None


class MessageDelta(_Event, tag="message_delta"):
    delta: MessageDeltaBody
    usage: Usage


class MessageStop(_Event, tag="message_stop"):
    pass


class ErrorBody(Struct, kw_only=True):
    type: str
    message: str


class ErrorEvent(_Event, tag="error"):
    error: ErrorBody
