"""The real model (gemma-3-270m, a base model with ``chat_format: gemma``) through the official
``openai`` SDK, unchanged: chat, streaming, completions, embeddings, tools, JSON output; and a
client that goes away mid-stream stops the generation in the worker."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow  # gemma-3-270m


@pytest.fixture(scope="module")
def sdk(llama_server: KernaiServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{llama_server.url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as client:
        yield client


def test_completion_knows_facts(sdk: openai.OpenAI) -> None:
    result = sdk.completions.create(
        model="gemma", prompt="The Eiffel Tower is located in the city of", max_tokens=3, temperature=0
    )
    assert "Paris" in result.choices[0].text
    assert result.usage is not None and result.usage.completion_tokens <= 3


def test_chat_uses_the_gemma_format_and_streams_the_same_text(
    sdk: openai.OpenAI, client: httpx.Client
) -> None:
    messages = [{"role": "user", "content": "Monday, Tuesday, Wednesday,"}]
    result = sdk.chat.completions.create(model="gemma", messages=messages, max_tokens=8)
    message = result.choices[0].message
    assert message.role == "assistant" and message.content
    prompt = "<start_of_turn>user\nMonday, Tuesday, Wednesday,<end_of_turn>\n<start_of_turn>model\n"
    tokens = client.post("/v1/tokenize", json={"model": "gemma", "content": prompt}).json()["tokens"]
    assert result.usage is not None and result.usage.prompt_tokens == len(tokens)
    stream = sdk.chat.completions.create(
        model="gemma", messages=messages, max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == message.content
    assert (
        chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == result.usage.completion_tokens
    )


def test_tools_give_a_parsed_call(sdk: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    result = sdk.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=tools,
        tool_choice="required",
        max_tokens=30,
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_json_schema_output_validates(sdk: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    result = sdk.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "A person as JSON with name and age."}],
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = json.loads(result.choices[0].message.content or "")
    assert set(data) == {"name", "age"} and isinstance(data["name"], str) and isinstance(data["age"], int)


def test_embeddings_rank_by_meaning(sdk: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat", "A cat is sitting on a mat", "Stock prices fell sharply today"]
    result = sdk.embeddings.create(model="gemma", input=texts)
    vectors = np.array([item.embedding for item in result.data])
    assert vectors.shape == (3, 640)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[1, 2]
    packed = sdk.embeddings.create(model="gemma", input=texts[0], encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(packed.data[0].embedding), dtype="<f4")  # type: ignore[arg-type]
    assert decoded == pytest.approx(vectors[0], abs=1e-5)


def test_unknown_model_raises_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_client_disconnect_stops_generation(llama_server: KernaiServer, client: httpx.Client) -> None:
    def status() -> dict:
        return client.get("/backend/monitor", params={"model": "gemma"}).json()["status"]

    body = {"model": "gemma", "prompt": "Monday, Tuesday,", "max_tokens": 600, "stream": True}
    with (
        httpx.Client(base_url=llama_server.url, timeout=60) as streaming,
        streaming.stream("POST", "/v1/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert next(line for line in response.iter_lines() if line.startswith("data: "))
        assert status()["active_generations"] == 1
    deadline = time.monotonic() + 10
    while status()["active_generations"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = status()
    assert stopped["active_generations"] == 0
    time.sleep(0.5)
    assert status()["tokens_generated"] == stopped["tokens_generated"]  # nothing runs on in the background


def test_edits_and_detokenize(client: httpx.Client) -> None:
    def tokenize(text: str) -> list[int]:
        return client.post("/v1/tokenize", json={"model": "gemma", "content": text}).json()["tokens"]

    response = client.post(
        "/v1/edits",
        json={
            "model": "gemma",
            "instruction": "Fix the spelling mistakes.",
            "input": "The Eifel Tower is in Pariss.",
            "max_tokens": 16,
        },
    )
    assert response.status_code == 200, response.text
    edit = response.json()
    text = edit["choices"][0]["text"]
    assert "Tower" in text and "Paris" in text  # the base model mostly repeats the input it was given
    # the gemma format folds the instruction (the system turn) into the user turn
    prompt = (
        "<start_of_turn>user\nFix the spelling mistakes.\n\nThe Eifel Tower is in Pariss.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert edit["usage"]["prompt_tokens"] == len(tokenize(prompt))
    assert 0 < edit["usage"]["completion_tokens"] <= 16
    sentence = "The Eiffel Tower is in Paris, été 2024."
    tokens = tokenize(sentence)
    assert tokens[0] == 2 and len(tokens) < len(sentence) // 2  # <bos>, then whole words
    detokenized = client.post("/v1/detokenize", json={"model": "gemma", "tokens": tokens})
    assert detokenized.status_code == 200 and detokenized.json() == {"content": sentence}
    pieces = [
        client.post("/v1/detokenize", json={"model": "gemma", "tokens": [t]}).json()["content"]
        for t in tokens[1:]
    ]
    assert "".join(pieces) == sentence
