"""`POST /v1/messages` through the official `anthropic` SDK and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

import anthropic
import httpx
import pytest

from kernai.testing import KernaiServer

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client(surfaces_server: KernaiServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=surfaces_server.url, api_key="unused", max_retries=0)


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_create_with_system_and_blocks(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="echo",
        max_tokens=50,
        system="You are terse.",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
            }
        ],
    )
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello there"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.output_tokens == 2 and message.usage.input_tokens > 0
    assert message.model == "echo"


def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic) -> None:
    text = "one two three four five"
    limited = client.messages.create(model="echo", max_tokens=2, messages=[{"role": "user", "content": text}])
    assert limited.content[0].text == "one two" and limited.stop_reason == "max_tokens"
    stopped = client.messages.create(
        model="echo", max_tokens=50, stop_sequences=["four"], messages=[{"role": "user", "content": text}]
    )
    assert stopped.content[0].text == "one two three"
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "four"


def test_stream_with_the_sdk(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="echo", max_tokens=50, messages=[{"role": "user", "content": "streamed words arrive"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "streamed words arrive" and len(pieces) == 3
    assert final.content[0].text == "streamed words arrive"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_stream_event_sequence(http: httpx.Client) -> None:
    body = {
        "model": "echo",
        "max_tokens": 10,
        "stream": True,
        "messages": [{"role": "user", "content": "a b"}],
    }
    with http.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["content"] == [] and events[0][1]["message"]["stop_reason"] is None
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "a"}
    assert events[6][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[6][1]["usage"]["output_tokens"] == 2


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "Paris"}
    first = client.messages.create(
        model="echo",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        messages=[question],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"text": "Paris"} and call.id
    second = client.messages.create(
        model="echo",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": [{"type": "text", "text": "sunny 21C"}],
                    }
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].text == "sunny 21C"


def test_tool_use_streams_input_json(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="echo",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Oslo"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [
        ("tool_use", "get_weather", {"text": "Oslo"})
    ]


def test_errors_use_anthropic_shape(client: anthropic.Anthropic, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    no_limit = http.post(
        "/v1/messages", json={"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    )
    assert no_limit.status_code == 400
    assert no_limit.json()["type"] == "error" and no_limit.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in no_limit.json()["error"]["message"]
    bad_choice = http.post(
        "/v1/messages",
        json={
            "model": "echo",
            "max_tokens": 5,
            "tool_choice": {"type": "tool", "name": "nope"},
            "tools": [WEATHER_TOOL],
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert bad_choice.status_code == 400 and "nope" in bad_choice.json()["error"]["message"]
    for empty in ([], ""):  # as Anthropic: only a final assistant message (a prefill) may be empty
        turns = [{"role": "user", "content": empty}, {"role": "assistant", "content": empty}]
        refused = http.post("/v1/messages", json={"model": "echo", "max_tokens": 5, "messages": turns})
        assert refused.status_code == 400 and "messages.0" in refused.json()["error"]["message"]
        prefill = [{"role": "user", "content": "x"}, {"role": "assistant", "content": empty}]
        assert http.post(
            "/v1/messages", json={"model": "echo", "max_tokens": 5, "messages": prefill}
        ).is_success


def stream_body(model: str, text: str) -> dict[str, object]:
    return {
        "model": model,
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": text}],
    }


def test_leaving_the_stream_stops_generation(assert_stops_when_client_leaves: Callable[..., str]) -> None:
    assert_stops_when_client_leaves("/v1/messages", stream_body)


def test_worker_crash_mid_stream_ends_with_an_error_event(kill_mid_stream: Callable[..., list[str]]) -> None:
    lines = kill_mid_stream("/v1/messages", stream_body)
    assert lines[-2] == "event: error"
    error = json.loads(lines[-1].removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "overloaded_error"


@pytest.mark.slow
def test_gemma_messages(client: anthropic.Anthropic, gemma: str) -> None:
    message = client.messages.create(
        model=gemma,
        max_tokens=16,
        system="Answer briefly.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.usage.input_tokens > 5 and 0 < message.usage.output_tokens <= 16
    assert message.stop_reason in {"end_turn", "max_tokens"}
    with client.messages.stream(
        model=gemma, max_tokens=12, messages=[{"role": "user", "content": "Count from one to ten."}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed.strip() and final.content[0].text == streamed
    assert 0 < final.usage.output_tokens <= 12 and final.usage.input_tokens > 0
    lines = client.messages.create(
        model=gemma,
        max_tokens=30,
        stop_sequences=["\n"],
        messages=[{"role": "user", "content": "List three colors, one per line."}],
    )
    assert lines.stop_reason == "stop_sequence" and lines.stop_sequence == "\n"
    assert "\n" not in lines.content[0].text and lines.usage.output_tokens < 30


@pytest.mark.slow
def test_gemma_tool_use(client: anthropic.Anthropic, gemma: str) -> None:
    message = client.messages.create(
        model=gemma,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    call = next(block for block in message.content if block.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input.get("city"), str)


@pytest.mark.slow
def test_gemma_prompt_over_the_context_is_a_400(http: httpx.Client, gemma: str) -> None:
    for stream in (False, True):
        response = http.post(
            "/v1/messages",
            json={
                "model": gemma,
                "max_tokens": 8,
                "stream": stream,
                "messages": [{"role": "user", "content": "word " * 3000}],
            },
        )
        assert response.status_code == 400, response.text
        assert (
            response.json()["error"]["type"] == "invalid_request_error"
            and "2048" in response.json()["error"]["message"]
        )
