"""A llama-cpp model's chat template, read from its config or its GGUF file, and rendered as llama.cpp's
Jinja templates are (a sandbox, ``trim_blocks``, ``raise_exception``, ``strftime_now``)."""

from __future__ import annotations

import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from kernai.capabilities import ChatMessage
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest, NotSupported
from kernai.gguf_file import GGUFFacts


def chat_template(config: ModelConfig, facts: GGUFFacts | None) -> str:
    """The Jinja template the model chats with: the config's ``chat_template``, else the GGUF's; empty
    when it has none (or a named ``chat_format`` instead)."""
    if template := config.options.get("chat_template"):
        return str(template)
    if config.options.get("chat_format") or facts is None:
        return ""
    return str(facts.metadata.get("tokenizer.chat_template", ""))


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(format: str) -> str:
    return datetime.datetime.now().strftime(format)


def render(
    config: ModelConfig, facts: GGUFFacts | None, messages: list[ChatMessage], add_generation_prompt: bool
) -> str:
    """The prompt the model's template makes of ``messages``; 400 when the model has no Jinja template
    or the template rejects them."""
    template = chat_template(config, facts)
    if not template:
        chat_format = config.options.get("chat_format")
        reason = f"a named chat_format ({chat_format})" if chat_format else "no chat template"
        raise NotSupported(
            f"Model '{config.name}' has {reason}: apply-template renders Jinja chat templates "
            "(set chat_template in its config)",
            param="messages",
        )
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(raise_exception=_raise, strftime_now=_strftime_now)
    plain: list[dict[str, Any]] = [
        {"role": m.role, "content": m.text(), **({"name": m.name} if m.name else {})} for m in messages
    ]
    try:
        return environment.from_string(template).render(
            messages=plain,
            add_generation_prompt=add_generation_prompt,
            bos_token=facts.bos_token if facts else "",
            eos_token=facts.eos_token if facts else "",
        )
    except jinja2.exceptions.TemplateError as exc:
        raise InvalidRequest(f"The chat template rejected the messages: {exc}", param="messages") from None
