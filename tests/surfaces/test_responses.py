"""Open Responses (`/v1/responses`) through the official `openai` SDK and raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from kernai.testing import KernaiServer

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client(surfaces_server: KernaiServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{surfaces_server.url}/v1", api_key="unused", max_retries=0)


def wait_for_status(
    client: openai.OpenAI, response_id: str, statuses: set[str], timeout: float = 20.0
) -> str:
    deadline = time.monotonic() + timeout
    while (status := client.responses.retrieve(response_id).status) not in statuses:
        assert time.monotonic() < deadline, f"still {status}"
        time.sleep(0.05)
    return status


def test_create_and_retrieve(client: openai.OpenAI) -> None:
    response = client.responses.create(model="echo", input="hello open responses", instructions="Be brief.")
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.output_text == "hello open responses"
    assert response.instructions == "Be brief." and response.store is True
    assert response.usage is not None and response.usage.output_tokens == 3
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    again = client.responses.retrieve(response.id)
    assert again.model_dump() == response.model_dump()
    [item] = client.responses.input_items.list(response.id)
    assert item.type == "message" and item.role == "user" and item.id
    assert [(part.type, part.text) for part in item.content] == [("input_text", "hello open responses")]


def test_input_items_and_limits(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="echo",
        max_output_tokens=2,
        input=[
            {"role": "developer", "content": "ignored by the echo"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one two three"}]},
        ],
    )
    assert response.output_text == "one two"
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_input_items_pages(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="echo", input=[{"role": "user", "content": f"turn {i}"} for i in range(5)]
    )
    newest_first = [item.content[0].text for item in client.responses.input_items.list(response.id)]
    assert newest_first == [f"turn {i}" for i in reversed(range(5))]
    page = client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [item.content[0].text for item in page.data] == ["turn 0", "turn 1"] and page.has_more
    rest = client.responses.input_items.list(response.id, order="asc", after=page.data[-1].id)
    assert [item.content[0].text for item in rest.data] == ["turn 2", "turn 3", "turn 4"]


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    response = client.responses.create(model="echo", input="ephemeral", store=False)
    assert response.output_text == "ephemeral"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_stream_with_the_sdk(client: openai.OpenAI) -> None:
    stream = client.responses.create(model="echo", input="three streamed words", stream=True)
    events = list(stream)
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta") == "three streamed words"
    )
    final = events[-1].response
    assert final.output_text == "three streamed words" and final.status == "completed"
    assert client.responses.retrieve(final.id).output_text == "three streamed words"


def test_function_call_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model="echo", input="Paris", tools=[WEATHER_TOOL], tool_choice="required")
    call = first.output[0]
    assert (
        call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"text": "Paris"}'
    )
    second = client.responses.create(
        model="echo",
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny 21C"}],
    )
    assert second.output_text == "sunny 21C" and second.previous_response_id == first.id
    [output] = client.responses.input_items.list(second.id)
    assert output.type == "function_call_output" and output.output == "sunny 21C" and output.id


def test_function_call_streams_arguments(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="echo",
            input="Oslo",
            tools=[WEATHER_TOOL],
            stream=True,
            tool_choice={"type": "function", "name": "get_weather"},
        )
    )
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"text": "Oslo"}'
    final = events[-1].response
    assert final.output[0].type == "function_call" and final.output[0].status == "completed"


def test_background_completes_and_cancels(client: openai.OpenAI, http: httpx.Client) -> None:
    def words_generated() -> int:
        status = http.get("/backend/monitor", params={"model": "slow-echo"}).json()["status"]
        return status["tokens_generated"]

    quick = client.responses.create(model="echo", input="in the background", background=True)
    assert quick.status in {"queued", "in_progress"} and quick.background is True
    assert wait_for_status(client, quick.id, {"completed"}) == "completed"
    assert client.responses.retrieve(quick.id).output_text == "in the background"
    client.responses.create(model="slow-echo", input="warm")
    before = words_generated()
    slow = client.responses.create(
        model="slow-echo", input=" ".join(f"w{i}" for i in range(100)), max_output_tokens=100, background=True
    )
    deadline = time.monotonic() + 20
    while words_generated() < before + 2:
        assert time.monotonic() < deadline, "the background response did not start"
        time.sleep(0.05)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(slow.id).status == "cancelled"
    assert cancelled.output[0].content[0].text.startswith("w0 w1")  # what it had generated is kept
    time.sleep(0.3)
    stopped = words_generated()
    time.sleep(0.6)
    assert words_generated() == stopped < before + 100, "the worker went on generating after the cancel"


def test_errors_use_openai_shape(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="x")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="echo", input="x", previous_response_id="resp_missing")
    no_tools = http.post("/v1/responses", json={"model": "echo", "input": "x", "tool_choice": "required"})
    assert no_tools.status_code == 400 and no_tools.json()["error"]["param"] == "tool_choice"
    bad_item = http.post(
        "/v1/responses", json={"model": "echo", "input": [{"type": "computer_call", "id": "1"}]}
    )
    assert bad_item.status_code == 400 and bad_item.json()["error"]["param"] == "input[0]"
    not_background = client.responses.create(model="echo", input="done already")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(not_background.id)
    deleted = http.delete(f"/v1/responses/{not_background.id}")
    assert deleted.json() == {"id": not_background.id, "object": "response", "deleted": True}
    assert http.get(f"/v1/responses/{not_background.id}").json()["error"]["code"] == "response_not_found"


def stream_body(model: str, text: str) -> dict[str, object]:
    return {"model": model, "input": text, "max_output_tokens": 200, "stream": True}


def test_leaving_the_stream_stops_generation(
    assert_stops_when_client_leaves: Callable[..., str], client: openai.OpenAI
) -> None:
    created = json.loads(assert_stops_when_client_leaves("/v1/responses", stream_body).removeprefix("data: "))
    assert client.responses.retrieve(created["response"]["id"]).status == "cancelled"


def test_worker_crash_mid_stream_fails_the_response(
    kill_mid_stream: Callable[..., list[str]], client: openai.OpenAI
) -> None:
    lines = kill_mid_stream("/v1/responses", stream_body)
    assert lines[-2] == "event: response.failed"
    failed = json.loads(lines[-1].removeprefix("data: "))["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "worker_crashed"
    assert client.responses.retrieve(failed["id"]).status == "failed"


@pytest.mark.slow
def test_stored_responses_survive_a_restart(surfaces_server: KernaiServer, client: openai.OpenAI) -> None:
    first = client.responses.create(model="echo", input="remember me")
    surfaces_server.restart()  # the shared server comes back on the same data directory
    client = openai.OpenAI(base_url=f"{surfaces_server.url}/v1", api_key="unused", max_retries=0)
    assert client.responses.retrieve(first.id).output_text == "remember me"
    follow_up = client.responses.create(model="echo", input="and this", previous_response_id=first.id)
    assert follow_up.output_text == "and this" and follow_up.previous_response_id == first.id


@pytest.mark.slow
def test_gemma_responses(client: openai.OpenAI, gemma: str) -> None:
    first = client.responses.create(model=gemma, input="My name is Ada. Say hello.", max_output_tokens=16)
    assert first.output_text.strip() and first.usage.input_tokens > 5
    second = client.responses.create(
        model=gemma, input="What is my name?", previous_response_id=first.id, max_output_tokens=16
    )
    assert second.output_text.strip()
    # the stored conversation went back into the prompt
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    events = list(
        client.responses.create(model=gemma, input="Count to five.", max_output_tokens=12, stream=True)
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.strip() and events[-1].type in {"response.completed", "response.incomplete"}
    assert events[-1].response.output_text == deltas


@pytest.mark.slow
def test_gemma_prompt_over_the_context_is_a_400(http: httpx.Client, gemma: str) -> None:
    response = http.post("/v1/responses", json={"model": gemma, "input": "word " * 3000, "stream": True})
    assert response.status_code == 400 and "2048" in response.json()["error"]["message"]
