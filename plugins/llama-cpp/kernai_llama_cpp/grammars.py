"""GBNF grammars from requests: raw ``grammar``, ``response_format`` and tool calls.

Every grammar is checked with llama.cpp's parser before use: an invalid grammar is the client's
mistake (400), and llama.cpp aborts the process if sampling starts with one. Grammars travel as
GBNF text; :class:`~kernai_llama_cpp.lazy_grammar.LazyGrammar` enforces them while sampling.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from kernai import capabilities as cap
from kernai.errors import InvalidRequest
from kernai_llama_cpp.lazy_grammar import LazyGrammar
from kernai_llama_cpp.model import LlamaModel

FREE_TEXT_RULE = "kernai-free-text"


def checked(model: LlamaModel, gbnf: str, param: str) -> str:
    """``gbnf`` once llama.cpp's parser accepts it, or a 400 naming ``param``."""
    LazyGrammar(model.llama._model.vocab, gbnf, param).close()
    return gbnf


def schema_to_gbnf(schema: dict[str, Any], param: str) -> str:
    """The grammar of JSON matching ``schema``; strings may not hold raw control characters
    (llama-cpp-python's converter allows them, which strict JSON parsers reject)."""
    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:
        raise InvalidRequest(f"Unsupported JSON schema: {exc}", param=param) from None
    return gbnf.replace('char ::= [^"\\\\] |', 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |')


def response_format_gbnf(response_format: cap.ResponseFormat | None) -> str | None:
    """The grammar that makes the output a JSON object (matching the schema when one is given)."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object" and not response_format.schema:
        return JSON_GBNF
    if response_format.type in ("json_object", "json_schema") and response_format.schema:
        return schema_to_gbnf(response_format.schema, "response_format")
    raise InvalidRequest(
        f"Unsupported response_format type '{response_format.type}'", param="response_format"
    )


def request_grammar(
    model: LlamaModel, grammar: str | None, response_format: cap.ResponseFormat | None
) -> str | None:
    """The grammar a chat or completion request asks for: ``grammar`` wins over ``response_format``."""
    if grammar and grammar.strip():
        return checked(model, grammar, "grammar")
    if (gbnf := response_format_gbnf(response_format)) is not None:
        return checked(model, gbnf, "response_format")
    return None


def tool_call_schema(tools: list[cap.Tool]) -> dict[str, Any]:
    """The JSON schema of one call to any of ``tools``: ``{"name": ..., "arguments": {...}}``."""
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.function.name},
                "arguments": tool.function.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for tool in tools
    ]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def response_schema(response_format: cap.ResponseFormat | None) -> dict[str, Any] | None:
    """The JSON schema a JSON ``response_format`` asks for (any object for a bare ``json_object``)."""
    if response_format is None or response_format.type == "text":
        return None
    return response_format.schema or {"type": "object"}


def tool_gbnf(tools: list[cap.Tool], *, optional: bool, answer_schema: dict[str, Any] | None) -> str:
    """A grammar for one call to one of ``tools``. With ``optional`` the model may answer instead:
    with JSON matching ``answer_schema`` when given, else with text that does not start with ``{``."""
    call = tool_call_schema(tools)
    if not optional:
        return schema_to_gbnf(call, "tools")
    if answer_schema is not None:
        return schema_to_gbnf({"anyOf": [call, answer_schema]}, "tools")
    calls = re.sub(
        r"^root ::=", "kernai-tool-call ::=", schema_to_gbnf(call, "tools"), count=1, flags=re.MULTILINE
    )
    return calls + f"\nroot ::= kernai-tool-call | {FREE_TEXT_RULE}\n{FREE_TEXT_RULE} ::= [^{{] [^\\x00]*\n"
