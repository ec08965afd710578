"""kernai.checks: what every capability request must satisfy, whatever surface it came through."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kernai import capabilities as cap
from kernai.checks import checked
from kernai.errors import InvalidRequest

TOOLS = [
    cap.Tool(function=cap.FunctionDef(name="get_weather")),
    cap.Tool(function=cap.FunctionDef(name="get_time")),
]


def chat(**fields: Any) -> cap.ChatRequest:
    return cap.ChatRequest(messages=[cap.ChatMessage(role="user", content="hi")], **fields)


@pytest.mark.parametrize(
    "choice", [None, "auto", "required", {"type": "function", "function": {"name": "get_time"}}]
)
def test_valid_choices_pass_unchanged(choice: Any) -> None:
    request = chat(tools=TOOLS, tool_choice=choice)
    assert checked(request) == request


def test_none_sends_no_tools() -> None:
    assert checked(chat(tools=TOOLS, tool_choice="none")).tools is None


@pytest.mark.parametrize(
    ("choice", "tools", "message"),
    [
        (
            {"type": "function", "function": {"name": "nope"}},
            TOOLS,
            "unknown tool 'nope' (tools: get_weather, get_time)",
        ),
        ("required", None, "'required' needs tools"),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            "unknown tool 'get_time' (tools: none given)",
        ),
        ("sometimes", TOOLS, "must be auto, none, required or a function by name"),
        ({"type": "function"}, TOOLS, "must be auto, none, required or a function by name"),
        ({"type": "function", "function": {"name": ""}}, TOOLS, "a function by name"),
    ],
)
def test_bad_choices_are_refused_naming_the_parameter(choice: Any, tools: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)) as refused:
        checked(chat(tools=tools, tool_choice=choice))
    assert refused.value.param == "tool_choice"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("top_p", 1.5),
        ("min_p", -1.0),
        ("top_k", -1),
        ("presence_penalty", 3.0),
        ("frequency_penalty", -2.5),
        ("repeat_penalty", -1.0),
        ("max_tokens", 0),
    ],
)
def test_sampling_out_of_range_is_refused_for_chat_and_completion(field: str, value: float) -> None:
    sampling = cap.Sampling(**{field: value})
    for request in (chat(sampling=sampling), cap.CompletionRequest(prompt="x", sampling=sampling)):
        with pytest.raises(InvalidRequest) as refused:
            checked(request)
        assert refused.value.param == field


def test_stop_sequences_lose_empty_ones_and_are_at_most_16() -> None:
    assert checked(chat(sampling=cap.Sampling(stop=["", "end", ""]))).sampling.stop == ["end"]
    with pytest.raises(InvalidRequest, match="At most 16 stop sequences, got 17"):
        checked(cap.CompletionRequest(prompt="x", sampling=cap.Sampling(stop=[f"s{i}" for i in range(17)])))


def test_other_requests_pass_through() -> None:
    request = cap.EmbeddingsRequest(input=["a"])
    assert checked(request) is request


def test_an_empty_embeddings_input_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="input must not be empty") as refused:
        checked(cap.EmbeddingsRequest(input=[]))
    assert refused.value.param == "input"
