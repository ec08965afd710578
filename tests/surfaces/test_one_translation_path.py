"""The three chat surfaces answer the same request the same way: the checks of tools, tool_choice,
sampling and stop sequences happen once, on the capability request (kernai.checks), and each surface
answers in its own error format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

WEATHER = {"name": "get_weather", "description": "Weather of a city", "schema": {"type": "object"}}


def openai_chat(choice: Any, tools: bool, **extra: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": "echo", "messages": [{"role": "user", "content": "Paris"}], **extra}
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": WEATHER["name"], "parameters": WEATHER["schema"]}}
        ]
    if choice is not None:
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice}} if choice != "required" else choice
        )
    return "/v1/chat/completions", body


def responses(choice: Any, tools: bool, **extra: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": "echo", "input": "Paris", **extra}
    if tools:
        body["tools"] = [{"type": "function", "name": WEATHER["name"], "parameters": WEATHER["schema"]}]
    if choice is not None:
        body["tool_choice"] = {"type": "function", "name": choice} if choice != "required" else choice
    return "/v1/responses", body


def anthropic(choice: Any, tools: bool, **extra: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "model": "echo",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Paris"}],
    }
    body |= {"stop_sequences" if key == "stop" else key: value for key, value in extra.items()}
    if tools:
        body["tools"] = [{"name": WEATHER["name"], "input_schema": WEATHER["schema"]}]
    if choice is not None:
        body["tool_choice"] = {"type": "tool", "name": choice} if choice != "required" else {"type": "any"}
    return "/v1/messages", body


Surface = Callable[..., tuple[str, dict[str, Any]]]
SURFACES = [
    pytest.param(openai_chat, id="chat"),
    pytest.param(responses, id="responses"),
    pytest.param(anthropic, id="messages"),
]


def refusal(response: httpx.Response) -> str:
    """The message of a 400, read in the surface's own error format."""
    assert response.status_code == 400, response.text
    body = response.json()
    if response.request.url.path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        return str(body["error"]["message"])
    assert body["error"]["param"] == "tool_choice" or "stop" in body["error"]["message"]
    return str(body["error"]["message"])


@pytest.mark.parametrize("surface", SURFACES)
def test_a_tool_choice_naming_an_unknown_tool_is_a_400_on_every_surface(
    http: httpx.Client, surface: Surface
) -> None:
    path, body = surface("nope", tools=True)
    assert "unknown tool 'nope'" in refusal(http.post(path, json=body))


@pytest.mark.parametrize("surface", SURFACES)
def test_a_forced_tool_without_tools_is_a_400_on_every_surface(http: httpx.Client, surface: Surface) -> None:
    path, body = surface("required", tools=False)
    assert "needs tools" in refusal(http.post(path, json=body))


@pytest.mark.parametrize("surface", SURFACES)
def test_a_named_tool_is_called_on_every_surface(http: httpx.Client, surface: Surface) -> None:
    path, body = surface("get_weather", tools=True)
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    assert "get_weather" in response.text and "Paris" in response.text


@pytest.mark.parametrize("surface", [SURFACES[0], SURFACES[2]])
def test_too_many_stop_sequences_is_a_400_where_a_surface_takes_them(
    http: httpx.Client, surface: Surface
) -> None:
    path, body = surface(None, tools=False, stop=[f"s{i}" for i in range(17)])
    assert "At most 16 stop sequences" in refusal(http.post(path, json=body))
