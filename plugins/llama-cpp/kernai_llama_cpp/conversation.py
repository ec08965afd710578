"""Chat requests: messages to a prompt through the model's chat template, and tool calling.

Tool calling works with any model: the tools are described in the system prompt and a grammar
makes the answer either one JSON call ``{"name": ..., "arguments": {...}}`` or, with
``tool_choice: auto``, plain text that does not start with ``{``. Earlier calls and their results
in the conversation are rendered in the same JSON form, so the model sees its own convention.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from llama_cpp import llama_chat_format

from kernai import capabilities as cap
from kernai.errors import InvalidRequest, NotSupported
from kernai_llama_cpp.model import Formatter, LlamaModel

TOOL_PROMPT = (
    "You can call these tools:\n{tools}\n\n"
    'To call a tool, answer with only a JSON object {{"name": <tool name>, "arguments": <arguments object>}}.'
)
TOOL_PROMPT_REQUIRED = TOOL_PROMPT + " You must call one of them."
TOOL_PROMPT_AUTO = TOOL_PROMPT + " If no tool is needed, answer normally in plain text."


def chosen_tools(request: cap.ChatRequest) -> tuple[list[cap.Tool], bool]:
    """The tools the model may call and whether it must call one. The kernel has checked the choice
    (:func:`kernai.checks.checked`): ``auto``, ``none``, ``required`` or a function among ``tools``."""
    tools = request.tools or []
    choice = request.tool_choice
    if not tools or choice == "none":
        return [], False
    if isinstance(choice, dict):
        return [tool for tool in tools if tool.function.name == choice["function"]["name"]], True
    return tools, choice == "required"


def _call_text(call: cap.ToolCall) -> str:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError:
        arguments = call.function.arguments
    return json.dumps({"name": call.function.name, "arguments": arguments})


def _plain(message: cap.ChatMessage, model: LlamaModel, names: dict[str, str]) -> dict[str, Any]:
    """One message as the template sees it: text content, tool calls and results as text."""
    if message.role not in ("system", "developer", "user", "assistant", "tool"):
        raise InvalidRequest(f"Unknown message role '{message.role}'", param="messages")
    if isinstance(message.content, list) and (kinds := {p.type for p in message.content} - {"text"}):
        raise NotSupported(
            f"Model '{model.name}' takes text only, not {', '.join(sorted(kinds))} content", param="messages"
        )
    text = message.text()
    if message.role == "developer":
        return {"role": "system", "content": text}
    if message.role == "assistant" and message.tool_calls:
        for call in message.tool_calls:
            names[call.id] = call.function.name
        calls = "\n".join(_call_text(call) for call in message.tool_calls)
        return {"role": "assistant", "content": f"{text}\n{calls}" if text else calls}
    if message.role == "tool":
        if model.keeps_tool_role:
            return {"role": "tool", "content": text, "tool_call_id": message.tool_call_id or ""}
        name = names.get(message.tool_call_id or "", message.name or "the tool")
        return {"role": "user", "content": f"Result of {name}: {text}"}
    return {"role": message.role, "content": text}


def template_messages(
    model: LlamaModel, messages: list[cap.ChatMessage], tool_prompt: str | None
) -> list[dict[str, Any]]:
    """The conversation as plain role/content dicts the chat template can render."""
    names: dict[str, str] = {}
    plain = [_plain(message, model, names) for message in messages]
    if tool_prompt:
        systems = [m for m in plain if m["role"] == "system"]
        if systems:
            systems[0]["content"] = f"{systems[0]['content']}\n\n{tool_prompt}"
        else:
            plain.insert(0, {"role": "system", "content": tool_prompt})
    if model.folds_system:
        system = "\n\n".join(m["content"] for m in plain if m["role"] == "system")
        plain = [m for m in plain if m["role"] != "system"]
        if system:
            firsts = [m for m in plain if m["role"] == "user"]
            if firsts:
                firsts[0]["content"] = f"{system}\n\n{firsts[0]['content']}"
            else:
                plain.insert(0, {"role": "user", "content": system})
    merged: list[dict[str, Any]] = []
    for message in plain:  # strict templates need alternating turns
        if merged and merged[-1]["role"] == message["role"] and message["role"] in ("user", "assistant"):
            merged[-1]["content"] = f"{merged[-1]['content']}\n\n{message['content']}"
        else:
            merged.append(message)
    return merged


def tool_prompt(tools: list[cap.Tool], required: bool) -> str | None:
    if not tools:
        return None
    described = "\n".join(
        json.dumps(
            {
                "name": t.function.name,
                "description": t.function.description or "",
                "parameters": t.function.parameters or {"type": "object"},
            },
            separators=(",", ":"),
        )
        for t in tools
    )
    return (TOOL_PROMPT_REQUIRED if required else TOOL_PROMPT_AUTO).format(tools=described)


def format_messages(
    model: LlamaModel, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True
) -> llama_chat_format.ChatFormatterResponse:
    """The model's chat template applied to ``messages`` (from :func:`template_messages`); a 400 when
    the model has none or the template rejects them."""
    formatter: Formatter = model.formatter
    if formatter is None:
        raise InvalidRequest(
            f"Model '{model.name}' has no chat template: set chat_format (e.g. gemma, chatml) or "
            "chat_template in its config, or use /v1/completions",
            param="model",
        )
    if not add_generation_prompt:
        if not isinstance(formatter, llama_chat_format.Jinja2ChatFormatter):
            raise NotSupported(
                f"Model '{model.name}' formats chats with {model.template_source}, which always adds the "
                "generation prompt",
                param="add_generation_prompt",
            )
        formatter = copy.copy(formatter)
        formatter.add_generation_prompt = False
    try:
        return formatter(messages=messages)
    except Exception as exc:  # templates raise on conversations they do not accept
        raise InvalidRequest(f"The chat template rejected the messages: {exc}", param="messages") from None


def render(
    model: LlamaModel, request: cap.ChatRequest, tools: list[cap.Tool], required: bool
) -> tuple[list[int], list[str]]:
    """The prompt tokens and the extra stop strings of the model's chat template."""
    messages = template_messages(model, request.messages, tool_prompt(tools, required))
    formatted = format_messages(model, messages)
    stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
    tokens = model.tokenize(formatted.prompt, add_bos=not formatted.added_special)
    bos = model.llama.token_bos()
    if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # the template wrote BOS and so did we
        tokens = tokens[1:]
    return tokens, stop


def apply_template(model: LlamaModel, request: cap.ApplyTemplateRequest) -> cap.ApplyTemplateResult:
    """The prompt text a chat request with these messages and tools (``tool_choice`` auto) is generated
    from."""
    messages = template_messages(model, request.messages, tool_prompt(request.tools or [], required=False))
    formatted = format_messages(model, messages, add_generation_prompt=request.add_generation_prompt)
    return cap.ApplyTemplateResult(prompt=formatted.prompt)


def parse_tool_call(text: str, tools: list[cap.Tool]) -> cap.ToolCall | None:
    """The call in the model's answer, or ``None`` when it answered in text instead."""
    if not text.startswith("{"):  # the grammar starts a call right away
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    names = {tool.function.name for tool in tools}
    if (
        not isinstance(data, dict)
        or data.get("name") not in names
        or not isinstance(data.get("arguments"), dict)
    ):
        return None
    return cap.ToolCall(
        id=f"call_{uuid.uuid4().hex[:24]}",
        function=cap.FunctionCall(name=data["name"], arguments=json.dumps(data["arguments"])),
    )
