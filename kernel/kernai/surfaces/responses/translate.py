"""Open Responses to and from the capability structs: a request becomes a
:class:`~kernai.capabilities.ChatRequest` (``instructions`` a system message, input items messages,
``function_call`` items assistant tool calls and ``function_call_output`` items ``tool`` messages); a
result fills the response's output items, a stream of chunks becomes the Open Responses events.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from kernai import capabilities as cap
from kernai.config import ModelParameters
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.inference import now, response_format, sampling_with_defaults, sse_event
from kernai.surfaces.responses import schemas as wire
from kernai.surfaces.responses.store import ResponseStore, StoredResponse

TERMINAL = ("completed", "incomplete", "failed", "cancelled")


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# --- request translation ---------------------------------------------------------------------------


def _content(parts: str | list[wire.InputContent]) -> str | list[cap.ContentPart]:
    if isinstance(parts, str):
        return parts
    converted = [
        cap.ContentPart(type="image_url", image_url={"url": part.image_url or ""})
        if part.type == "input_image"
        else cap.ContentPart(type="text", text=part.text if part.text is not None else part.refusal or "")
        for part in parts
    ]
    if all(part.type == "text" for part in converted):
        return "".join(part.text or "" for part in converted)
    return converted


def _append_call(messages: list[cap.ChatMessage], call: cap.ToolCall) -> None:
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        last.tool_calls = [*(last.tool_calls or []), call]
    else:
        messages.append(cap.ChatMessage(role="assistant", tool_calls=[call]))


def input_messages(items: str | list[dict[str, Any]]) -> list[cap.ChatMessage]:
    """Chat messages for a request's ``input``."""
    if isinstance(items, str):
        return [cap.ChatMessage(role="user", content=items)]
    messages: list[cap.ChatMessage] = []
    for index, raw in enumerate(items):
        kind = raw.get("type", "message")
        try:
            if kind == "message":
                item = msgspec.convert(raw, wire.MessageItem)
                role = "system" if item.role == "developer" else item.role
                messages.append(cap.ChatMessage(role=role, content=_content(item.content)))
            elif kind == "function_call":
                call = msgspec.convert(raw, wire.FunctionCallItem)
                _append_call(
                    messages,
                    cap.ToolCall(id=call.call_id, function=cap.FunctionCall(call.name, call.arguments)),
                )
            elif kind == "function_call_output":
                output = msgspec.convert(raw, wire.FunctionCallOutputItem)
                content = _content(output.output)
                text = content if isinstance(content, str) else "".join(p.text or "" for p in content)
                messages.append(cap.ChatMessage(role="tool", tool_call_id=output.call_id, content=text))
            elif kind != "reasoning":
                raise InvalidRequest(
                    f"Input items of type '{kind}' are not supported", param=f"input[{index}]"
                )
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid input item {index}: {exc}", param=f"input[{index}]") from None
    if not messages:
        raise InvalidRequest("input has no messages", param="input")
    return messages


ITEM_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def listed_items(items: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A request's input items as ``input_items`` lists them: typed, with ids and parts for string content."""
    listed = []
    for raw in [{"role": "user", "content": items}] if isinstance(items, str) else items:
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if kind == "message" and isinstance(item.get("content"), str):
            assistant = item.get("role") == "assistant"
            part: dict[str, Any] = {
                "type": "output_text" if assistant else "input_text",
                "text": item["content"],
            }
            item["content"] = [{**part, "annotations": []} if assistant else part]
        item.setdefault("id", _id(ITEM_ID_PREFIXES.get(kind, "item")))
        if kind != "reasoning":
            item.setdefault("status", "completed")
        listed.append(item)
    return listed


def _tools(data: wire.CreateResponse) -> list[cap.Tool] | None:
    tools = []
    for index, tool in enumerate(data.tools or []):
        if tool.type != "function":
            raise InvalidRequest(f"Tools of type '{tool.type}' are not supported", param=f"tools[{index}]")
        tools.append(
            cap.Tool(
                function=cap.FunctionDef(
                    name=tool.name,
                    description=tool.description,
                    parameters=tool.parameters,
                    strict=tool.strict,
                )
            )
        )
    return tools or None


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """Open Responses names a function as ``{type: function, name}``; the kernel as OpenAI's chat does."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def chat_request(
    data: wire.CreateResponse, history: list[cap.ChatMessage], defaults: ModelParameters
) -> cap.ChatRequest:
    messages = [cap.ChatMessage(role="system", content=data.instructions)] if data.instructions else []
    text_format = data.text.format if data.text else wire.TextFormat()
    tools = _tools(data)
    return cap.ChatRequest(
        messages=messages + history,
        sampling=sampling_with_defaults(
            defaults, max_tokens=data.max_output_tokens, temperature=data.temperature, top_p=data.top_p
        ),
        tools=tools,
        tool_choice=_tool_choice(data.tool_choice),
        response_format=response_format(text_format.type, text_format.schema),
        logprobs=data.top_logprobs is not None,
        top_logprobs=data.top_logprobs or 0,
        stream=data.stream,
    )


# --- results ---------------------------------------------------------------------------------------


def _logprobs(tokens: list[cap.TokenLogprob] | None) -> list[wire.Logprob]:
    return [
        wire.Logprob(
            token=t.token,
            logprob=t.logprob,
            bytes=t.bytes or list(t.token.encode()),
            top_logprobs=[
                wire.TopLogprob(
                    token=top.token, logprob=top.logprob, bytes=top.bytes or list(top.token.encode())
                )
                for top in t.top_logprobs
            ],
        )
        for t in tokens or []
    ]


def _usage(usage: cap.Usage) -> wire.ResponseUsage:
    return wire.ResponseUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        input_tokens_details=wire.InputTokensDetails(cached_tokens=usage.cached_tokens),
    )


def _finish(response: wire.ResponseObject, finish_reason: str | None, usage: cap.Usage) -> None:
    response.usage = _usage(usage)
    response.completed_at = now()
    if finish_reason == "length":
        response.status = "incomplete"
        response.incomplete_details = wire.IncompleteDetails(reason="max_output_tokens")
    else:
        response.status = "completed"


def assistant_turn(output: list[wire.OutputItem]) -> cap.ChatMessage:
    text = "".join(
        part.text for item in output if isinstance(item, wire.OutputMessage) for part in item.content
    )
    calls = [
        cap.ToolCall(id=item.call_id, function=cap.FunctionCall(item.name, item.arguments))
        for item in output
        if isinstance(item, wire.OutputFunctionCall)
    ]
    return cap.ChatMessage(role="assistant", content=text or None, tool_calls=calls or None)


def apply_result(response: wire.ResponseObject, result: cap.ChatResult) -> None:
    """Fill ``response`` with a finished chat result."""
    item_status = "incomplete" if result.finish_reason == "length" else "completed"
    if result.content or not result.tool_calls:
        text = wire.OutputText(text=result.content or "", logprobs=_logprobs(result.logprobs))
        response.output.append(wire.OutputMessage(id=_id("msg"), status=item_status, content=[text]))
    for call in result.tool_calls or []:
        response.output.append(
            wire.OutputFunctionCall(
                id=_id("fc"),
                call_id=call.id,
                name=call.function.name,
                arguments=call.function.arguments,
                status="completed",
            )
        )
    _finish(response, result.finish_reason, result.usage)


def new_response(data: wire.CreateResponse, status: str) -> wire.ResponseObject:
    return wire.ResponseObject(
        id=_id("resp"),
        created_at=now(),
        model=data.model,
        status=status,
        instructions=data.instructions,
        previous_response_id=data.previous_response_id,
        max_output_tokens=data.max_output_tokens,
        temperature=data.temperature,
        top_p=data.top_p,
        top_logprobs=data.top_logprobs,
        tools=data.tools or [],
        tool_choice=data.tool_choice or "auto",
        parallel_tool_calls=data.parallel_tool_calls,
        text=data.text or wire.TextConfig(),
        truncation=data.truncation or "disabled",
        store=data.store,
        background=data.background,
        metadata=data.metadata or {},
        user=data.user,
    )


# --- streaming -------------------------------------------------------------------------------------


class _EventWriter:
    """Builds the output items from chat chunks and numbers the events it emits."""

    def __init__(self, response: wire.ResponseObject) -> None:
        self.response = response
        self.sequence = itertools.count()
        self.message: wire.OutputMessage | None = None
        self.calls: dict[int, wire.OutputFunctionCall] = {}

    def event(self, event: Any) -> bytes:
        event.sequence_number = next(self.sequence)
        return sse_event(event, type(event).__struct_config__.tag)

    def _add(self, item: wire.OutputItem) -> bytes:
        self.response.output.append(item)
        return self.event(wire.OutputItemAdded(output_index=len(self.response.output) - 1, item=item))

    def text(self, piece: str, logprobs: list[cap.TokenLogprob] | None) -> list[bytes]:
        events = []
        if self.message is None:
            self.message = wire.OutputMessage(id=_id("msg"), status="in_progress", content=[])
            events.append(self._add(self.message))
            events.append(
                self.event(
                    wire.ContentPartAdded(
                        item_id=self.message.id,
                        output_index=self._index(self.message),
                        content_index=0,
                        part=wire.OutputText(text=""),
                    )
                )
            )
            self.message.content.append(wire.OutputText(text=""))
        part = self.message.content[0]
        part.text += piece
        deltas = _logprobs(logprobs)
        part.logprobs.extend(deltas)
        events.append(
            self.event(
                wire.OutputTextDelta(
                    item_id=self.message.id,
                    output_index=self._index(self.message),
                    content_index=0,
                    delta=piece,
                    logprobs=deltas,
                )
            )
        )
        return events

    def _index(self, item: wire.OutputItem) -> int:
        return next(i for i, existing in enumerate(self.response.output) if existing is item)

    def _close_message(self, status: str) -> list[bytes]:
        message, self.message = self.message, None
        if message is None:
            return []
        message.status = status
        index, part = self._index(message), message.content[0]
        return [
            self.event(
                wire.OutputTextDone(
                    item_id=message.id,
                    output_index=index,
                    content_index=0,
                    text=part.text,
                    logprobs=part.logprobs,
                )
            ),
            self.event(
                wire.ContentPartDone(item_id=message.id, output_index=index, content_index=0, part=part)
            ),
            self.event(wire.OutputItemDone(output_index=index, item=message)),
        ]

    def tool(self, delta: cap.ToolCallDelta) -> list[bytes]:
        events = []
        call = self.calls.get(delta.index)
        if call is None:
            events += self._close_message("completed")
            call = wire.OutputFunctionCall(
                id=_id("fc"),
                call_id=delta.id or _id("call"),
                name=delta.function.name if delta.function else "",
                arguments="",
                status="in_progress",
            )
            self.calls[delta.index] = call
            events.append(self._add(call))
        if delta.function and delta.function.arguments:
            call.arguments += delta.function.arguments
            events.append(
                self.event(
                    wire.FunctionCallArgumentsDelta(
                        item_id=call.id, output_index=self._index(call), delta=delta.function.arguments
                    )
                )
            )
        return events

    def close(self, finish_reason: str | None) -> list[bytes]:
        events = self._close_message("incomplete" if finish_reason == "length" else "completed")
        for call in self.calls.values():
            call.status = "completed"
            index = self._index(call)
            events.append(
                self.event(
                    wire.FunctionCallArgumentsDone(
                        item_id=call.id, output_index=index, name=call.name, arguments=call.arguments
                    )
                )
            )
            events.append(self.event(wire.OutputItemDone(output_index=index, item=call)))
        self.calls.clear()
        return events


async def response_events(
    chunks: AsyncGenerator[cap.Chunk, None], stored: StoredResponse, store: ResponseStore | None
) -> AsyncGenerator[bytes, None]:
    """The Open Responses event stream; the response is stored when it ends, however it ends."""
    response = stored.response
    writer = _EventWriter(response)
    yield writer.event(wire.ResponseCreated(response=msgspec.structs.replace(response, output=[])))
    yield writer.event(wire.ResponseInProgress(response=msgspec.structs.replace(response, output=[])))
    finish_reason: str | None = None
    usage = cap.Usage()
    try:
        async for chunk in chunks:
            assert isinstance(chunk, cap.ChatChunk)
            if chunk.content:
                for event in writer.text(chunk.content, chunk.logprobs):
                    yield event
            for delta in chunk.tool_calls or []:
                for event in writer.tool(delta):
                    yield event
            finish_reason = chunk.finish_reason or finish_reason
            usage = chunk.usage or usage
        for event in writer.close(finish_reason):
            yield event
        _finish(response, finish_reason, usage)
        stored.history.append(assistant_turn(response.output))
        done: Any = wire.ResponseIncomplete if response.status == "incomplete" else wire.ResponseCompleted
        yield writer.event(done(response=response))
    except KernaiError as exc:
        response.status = "failed"
        response.error = wire.ResponseError(code=exc.code or exc.error_type, message=exc.message)
        yield writer.event(wire.ResponseFailed(response=response))
    finally:
        await chunks.aclose()
        if response.status not in TERMINAL:
            response.status = "cancelled"
        if store is not None:
            store.save(stored)
