"""Anthropic's messages to and from the capability structs: a request becomes a
:class:`~kernai.capabilities.ChatRequest` (``system`` turns into a system message, ``tool_use`` blocks into
assistant ``tool_calls`` and ``tool_result`` blocks into ``tool`` messages); a result becomes a ``Message``,
a stream of chunks Anthropic's content-block events.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec

from kernai import capabilities as cap
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.inference import sampling_with_defaults, sse_event, stop_list
from kernai.surfaces.anthropic import schemas as wire
from kernai.surfaces.anthropic.errors import anthropic_shape

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def _text_of(blocks: str | list[Any] | None) -> str:
    if blocks is None:
        return ""
    if isinstance(blocks, str):
        return blocks
    return "".join(block.text for block in blocks if isinstance(block, wire.TextBlockParam))


def _image_part(block: wire.ImageBlockParam) -> cap.ContentPart:
    source = block.source
    if source.type == "url":
        return cap.ContentPart(type="image_url", image_url={"url": source.url or ""})
    return cap.ContentPart(
        type="image_url", image_url={"url": f"data:{source.media_type};base64,{source.data}"}
    )


def _user_messages(content: str | list[wire.ContentBlockParam]) -> list[cap.ChatMessage]:
    """A user turn: its ``tool_result`` blocks become ``tool`` messages, the rest one user message."""
    if isinstance(content, str):
        return [cap.ChatMessage(role="user", content=content)]
    messages: list[cap.ChatMessage] = []
    parts: list[cap.ContentPart] = []
    for block in content:
        if isinstance(block, wire.ToolResultBlockParam):
            text = _text_of(block.content)
            messages.append(
                cap.ChatMessage(
                    role="tool",
                    tool_call_id=block.tool_use_id,
                    content=f"Error: {text}" if block.is_error else text,
                )
            )
        elif isinstance(block, wire.TextBlockParam):
            parts.append(cap.ContentPart(type="text", text=block.text))
        elif isinstance(block, wire.ImageBlockParam):
            parts.append(_image_part(block))
        elif isinstance(block, wire.ToolUseBlockParam):
            raise InvalidRequest("tool_use blocks belong in assistant messages", param="messages")
    if parts:
        only_text = all(part.type == "text" for part in parts)
        content_value: str | list[cap.ContentPart] = (
            "".join(p.text or "" for p in parts) if only_text else parts
        )
        messages.append(cap.ChatMessage(role="user", content=content_value))
    return messages


def _assistant_message(content: str | list[wire.ContentBlockParam]) -> cap.ChatMessage:
    if isinstance(content, str):
        return cap.ChatMessage(role="assistant", content=content)
    text = "".join(block.text for block in content if isinstance(block, wire.TextBlockParam))
    calls = [
        cap.ToolCall(
            id=block.id, function=cap.FunctionCall(block.name, msgspec.json.encode(block.input).decode())
        )
        for block in content
        if isinstance(block, wire.ToolUseBlockParam)
    ]
    if any(isinstance(block, wire.ToolResultBlockParam) for block in content):
        raise InvalidRequest("tool_result blocks belong in user messages", param="messages")
    return cap.ChatMessage(role="assistant", content=text or None, tool_calls=calls or None)


def _tool_choice(choice: wire.ToolChoiceParam | None) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice of type 'tool' needs a 'name'", param="tool_choice")
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def chat_request(data: wire.MessagesRequest, defaults: Any) -> cap.ChatRequest:
    """The kernel request for an Anthropic Messages request."""
    messages: list[cap.ChatMessage] = []
    if system := _text_of(data.system):
        messages.append(cap.ChatMessage(role="system", content=system))
    for index, message in enumerate(data.messages):
        if not message.content and not (message.role == "assistant" and index == len(data.messages) - 1):
            raise InvalidRequest(
                f"messages.{index}: all messages must have non-empty content except for the optional final "
                "assistant message",
                param=f"messages.{index}.content",
            )
        if message.role == "user":
            messages.extend(_user_messages(message.content))
        else:
            messages.append(_assistant_message(message.content))
    tools = []
    for index, tool in enumerate(data.tools or []):
        if tool.type not in (None, "custom"):
            raise InvalidRequest(f"Server tools ('{tool.type}') are not supported", param=f"tools.{index}")
        tools.append(
            cap.Tool(
                function=cap.FunctionDef(
                    name=tool.name, description=tool.description, parameters=tool.input_schema
                )
            )
        )
    sampling = sampling_with_defaults(
        defaults,
        max_tokens=data.max_tokens,
        temperature=data.temperature,
        top_p=data.top_p,
        top_k=data.top_k,
        stop=stop_list(data.stop_sequences),
    )
    return cap.ChatRequest(
        messages=messages,
        sampling=sampling,
        tools=tools or None,
        tool_choice=_tool_choice(data.tool_choice),
        stream=data.stream,
    )


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the JSON object Anthropic's ``input`` holds."""
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def stop_reason(finish_reason: str | None, stop_sequence: str | None) -> str:
    if stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def message_of(result: cap.ChatResult, model: str) -> wire.Message:
    content: list[wire.ContentBlock] = []
    if result.content or not result.tool_calls:
        content.append(wire.TextBlock(text=result.content or ""))
    for call in result.tool_calls or []:
        content.append(
            wire.ToolUseBlock(id=call.id, name=call.function.name, input=tool_input(call.function.arguments))
        )
    return wire.Message(
        id=message_id(),
        model=model,
        content=content,
        stop_reason=stop_reason(result.finish_reason, result.stop_sequence),
        stop_sequence=result.stop_sequence,
        usage=wire.Usage(
            input_tokens=result.usage.prompt_tokens, output_tokens=result.usage.completion_tokens
        ),
    )


class _BlockWriter:
    """Turns chat chunks into Anthropic's content-block events, opening and closing blocks as needed."""

    def __init__(self) -> None:
        self.index = -1
        self.open: str | None = None
        self.tool_blocks: dict[int, int] = {}

    def _start(self, block: wire.ContentBlock, kind: str) -> list[bytes]:
        events = self.close()
        self.index += 1
        self.open = kind
        events.append(
            sse_event(wire.ContentBlockStart(index=self.index, content_block=block), "content_block_start")
        )
        return events

    def close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [sse_event(wire.ContentBlockStop(index=self.index), "content_block_stop")]

    def text(self, piece: str) -> list[bytes]:
        events = [] if self.open == "text" else self._start(wire.TextBlock(text=""), "text")
        events.append(
            sse_event(
                wire.ContentBlockDelta(index=self.index, delta=wire.TextDelta(text=piece)),
                "content_block_delta",
            )
        )
        return events

    def tool(self, call: cap.ToolCallDelta) -> list[bytes]:
        events: list[bytes] = []
        if call.index not in self.tool_blocks:
            name = call.function.name if call.function else ""
            block = wire.ToolUseBlock(id=call.id or f"toolu_{uuid.uuid4().hex[:24]}", name=name, input={})
            events = self._start(block, "tool_use")
            self.tool_blocks[call.index] = self.index
        if call.function and call.function.arguments and self.tool_blocks[call.index] == self.index:
            delta = wire.InputJsonDelta(partial_json=call.function.arguments)
            events.append(
                sse_event(wire.ContentBlockDelta(index=self.index, delta=delta), "content_block_delta")
            )
        return events

    def finish(self) -> list[bytes]:
        if self.index == -1:
            return self.text("")[:1] + self.close()
        return self.close()


def error_event(error: KernaiError) -> bytes:
    """An error after the stream started, as Anthropic sends it: ``event: error``."""
    return sse_event(
        anthropic_shape(error.status_code, error.message, error.error_type, error.param, error.code), "error"
    )


def _start_events(model: str, usage: cap.Usage | None) -> list[bytes]:
    counts = usage or cap.Usage()
    start = wire.Message(
        id=message_id(),
        model=model,
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=wire.Usage(input_tokens=counts.prompt_tokens, output_tokens=counts.completion_tokens),
    )
    return [sse_event(wire.MessageStart(message=start), "message_start"), sse_event(wire.Ping(), "ping")]


async def message_events(chunks: AsyncGenerator[cap.Chunk, None], model: str) -> AsyncGenerator[bytes, None]:
    """Anthropic's stream: message_start, ping, content blocks, message_delta, message_stop.

    ``message_start`` counts the input tokens when the first chunk carries the usage so far (the
    llama-cpp backend's does; the chunks come prefetched, so waiting for it delays nothing);
    ``message_delta`` has the final counts.
    """
    started = False
    blocks = _BlockWriter()
    finish_reason: str | None = None
    stop_sequence: str | None = None
    usage = cap.Usage()
    async with aclosing(chunks):
        async for chunk in chunks:
            assert isinstance(chunk, cap.ChatChunk)
            if not started:
                started = True
                for event in _start_events(model, chunk.usage):
                    yield event
            if chunk.content:
                for event in blocks.text(chunk.content):
                    yield event
            for call in chunk.tool_calls or []:
                for event in blocks.tool(call):
                    yield event
            finish_reason = chunk.finish_reason or finish_reason
            stop_sequence = chunk.stop_sequence or stop_sequence
            usage = chunk.usage or usage
    if not started:
        for event in _start_events(model, None):
            yield event
    for event in blocks.finish():
        yield event
    delta = wire.MessageDeltaBody(
        stop_reason=stop_reason(finish_reason, stop_sequence), stop_sequence=stop_sequence
    )
    counts = wire.Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
    yield sse_event(wire.MessageDelta(delta=delta, usage=counts), "message_delta")
    yield sse_event(wire.MessageStop(), "message_stop")
