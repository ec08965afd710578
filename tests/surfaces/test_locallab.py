"""LocalLab's text API (`/generate`, `/chat`, `/generate/batch`) as its client sends it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest


def test_generate(http: httpx.Client) -> None:
    response = http.post(
        "/generate",
        json={
            "prompt": "plain completion text",
            "model_id": "echo",
            "max_length": 2,
            "temperature": 0.7,
            "top_p": 0.9,
            "stream": False,
        },
    )
    assert response.status_code == 200
    assert response.json() == {"text": "plain completion", "model": "echo"}


def test_generate_without_model_id_uses_the_current_model(http: httpx.Client) -> None:
    http.post("/generate", json={"prompt": "warm", "model_id": "echo"})
    response = http.post("/generate", json={"prompt": "who answers", "max_tokens": 5})
    assert response.status_code == 200 and response.json()["text"] == "who answers"


def test_generate_stream(http: httpx.Client) -> None:
    with http.stream(
        "POST", "/generate", json={"prompt": "stream these words", "model_id": "echo", "stream": True}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert data == ["stream", " these", " words", "[DONE]"]


def test_chat(http: httpx.Client) -> None:
    response = http.post(
        "/chat",
        json={
            "model_id": "echo",
            "max_length": 10,
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "chat with me"},
            ],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["choices"] == [
        {"message": {"role": "assistant", "content": "chat with me"}, "index": 0, "finish_reason": "stop"}
    ]
    assert body["usage"]["completion_tokens"] == 3


def test_chat_stream_is_one_json_object_per_line(http: httpx.Client) -> None:
    body = {"model_id": "echo", "stream": True, "messages": [{"role": "user", "content": "line by line"}]}
    with http.stream("POST", "/chat", json=body) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert lines[-1] == "[DONE]"
    text = "".join(line["choices"][0]["delta"]["content"] for line in lines[:-1])
    assert text == "line by line"
    assert lines[0]["choices"][0]["delta"]["role"] == "assistant"
    assert lines[-2]["choices"][0]["finish_reason"] == "stop"


def test_batch(http: httpx.Client) -> None:
    response = http.post(
        "/generate/batch",
        json={"prompts": ["first one", "second", "third and last"], "model_id": "echo", "max_length": 2},
    )
    assert response.status_code == 200
    assert response.json() == {"responses": ["first one", "second", "third and"]}


def test_errors_are_detail_strings(http: httpx.Client) -> None:
    missing = http.post("/generate", json={"prompt": "x", "model_id": "no-such-model"})
    assert missing.status_code == 404 and "no-such-model" in missing.json()["detail"]
    no_prompt = http.post("/generate", json={"model_id": "echo"})
    assert no_prompt.status_code == 400 and "prompt" in no_prompt.json()["detail"]
    bad_temperature = http.post(
        "/chat", json={"model_id": "echo", "temperature": 5, "messages": [{"role": "user", "content": "x"}]}
    )
    assert bad_temperature.status_code == 400 and isinstance(bad_temperature.json()["detail"], str)
    empty_batch = http.post("/generate/batch", json={"prompts": [], "model_id": "echo"})
    assert empty_batch.status_code == 400


def test_leaving_the_stream_stops_generation(assert_stops_when_client_leaves: Callable[..., str]) -> None:
    assert_stops_when_client_leaves(
        "/generate",
        lambda model, text: {"model_id": model, "prompt": text, "max_length": 200, "stream": True},
    )


@pytest.mark.slow
def test_gemma_generate_and_chat(http: httpx.Client, gemma: str) -> None:
    generated = http.post(
        "/generate",
        json={"prompt": "The capital of France is", "model_id": gemma, "max_length": 8, "temperature": 0},
    )
    assert generated.status_code == 200, generated.text
    assert generated.json()["text"].strip() and generated.json()["model"] == gemma
    chat = http.post(
        "/chat",
        json={"model_id": gemma, "max_length": 12, "messages": [{"role": "user", "content": "Say hello."}]},
    )
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"].strip()
    batch = http.post(
        "/generate/batch",
        json={
            "model_id": gemma,
            "max_length": 4,
            "temperature": 0,
            "prompts": ["One, two,", "The capital of France is"],
        },
    )
    first, second = batch.json()["responses"]
    assert first.strip() and second.strip()
    assert second == generated.json()["text"][: len(second)]


@pytest.mark.slow
def test_gemma_prompt_over_the_context_is_a_400(http: httpx.Client, gemma: str) -> None:
    response = http.post("/generate", json={"model_id": gemma, "prompt": "word " * 3000})
    assert response.status_code == 400 and "2048" in response.json()["detail"]
