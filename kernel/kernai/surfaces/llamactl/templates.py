"""A llama-cpp model's chat template as its config or its GGUF file gives it (``/props`` shows it; the
model's worker renders it, for chat and ``/apply-template``)."""

from __future__ import annotations

from kernai.config import ModelConfig
from kernai.gguf_file import GGUFFacts


def chat_template(config: ModelConfig, facts: GGUFFacts | None) -> str:
    """The Jinja template the model chats with: the config's ``chat_template``, else the GGUF's; empty
    when it has none (or a named ``chat_format`` instead)."""
    if template := config.options.get("chat_template"):
        return str(template)
    if config.options.get("chat_format") or facts is None:
        return ""
    return str(facts.metadata.get("tokenizer.chat_template", ""))
