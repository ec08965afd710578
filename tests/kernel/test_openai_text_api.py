"""The OpenAI text endpoints, over HTTP and through the official SDK, on the reference backend."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from kernai.testing import KernaiServer

SENTENCE = "the quick brown fox jumps over the lazy dog"


def events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_chat_completion_answers_in_openai_shape(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "echo",
            "max_tokens": 4,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": SENTENCE}]},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "the quick brown fox"
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 4


def test_chat_n_choices_and_stop(client: httpx.Client) -> None:
    body = client.post(
        "/v1/chat/completions",
        json={"model": "echo", "n": 3, "stop": "fox", "messages": [{"role": "user", "content": SENTENCE}]},
    ).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in body["choices"]} == {"the quick brown"}


def test_chat_stream_sends_deltas_usage_and_done(client: httpx.Client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "echo",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "one two three"}],
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = events(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_completions_with_a_list_of_prompts_and_streaming(client: httpx.Client) -> None:
    body = client.post("/v1/completions", json={"model": "echo", "prompt": ["a b", "c d e"]}).json()
    assert body["object"] == "text_completion"
    assert [c["text"] for c in body["choices"]] == ["a b", "c d e"]
    ids = {"model": "echo", "prompt": [list(b"a b"), list(b"c")]}  # token arrays: the ids' text completed
    assert [c["text"] for c in client.post("/v1/completions", json=ids).json()["choices"]] == ["a b", "c"]
    with client.stream(
        "POST", "/v1/completions", json={"model": "echo", "prompt": "x y z", "stream": True}
    ) as response:
        data = events(response)
    assert data[-1] == "[DONE]"
    assert "".join(json.loads(d)["choices"][0]["text"] for d in data[:-1]) == "x y z"


def test_edits_and_tokenize_round_trip(client: httpx.Client) -> None:
    edit = client.post("/v1/edits", json={"model": "echo", "instruction": "fix", "input": "teh cat"}).json()
    assert edit["object"] == "edit" and edit["choices"][0]["text"] == "teh cat"
    tokens = client.post("/v1/tokenize", json={"model": "echo", "content": "héllo"}).json()["tokens"]
    assert tokens == list("héllo".encode())
    text = client.post("/v1/detokenize", json={"model": "echo", "tokens": tokens}).json()["content"]
    assert text == "héllo"


def test_embeddings_float_base64_and_token_input(client: httpx.Client) -> None:
    floats = client.post("/v1/embeddings", json={"model": "echo", "input": ["abc", "xyz"]}).json()
    assert floats["object"] == "list" and len(floats["data"]) == 2
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 16
    encoded = client.post(
        "/v1/embeddings", json={"model": "echo", "input": "abc", "encoding_format": "base64"}
    ).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack(f"<{len(raw) // 4}f", raw) == pytest.approx(vector, abs=1e-6)
    from_tokens = client.post("/v1/embeddings", json={"model": "echo", "input": list(b"abc")}).json()
    assert from_tokens["data"][0]["embedding"] == pytest.approx(vector)


def test_the_official_openai_sdk_works_unchanged(server: KernaiServer) -> None:
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    reply = sdk.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "hello there"
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in sdk.chat.completions.create(
            model="echo", stream=True, messages=[{"role": "user", "content": "a b c"}]
        )
        if chunk.choices
    )
    assert streamed == "a b c"
    assert sdk.completions.create(model="echo", prompt="x y").choices[0].text == "x y"
    assert len(sdk.embeddings.create(model="echo", input="hi").data[0].embedding) == 16
    assert "echo" in {model.id for model in sdk.models.list()}
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "echo", "messages": []}, "messages"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "stop": ["s"] * 17}, "stop"),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"},
            "tool_choice",
        ),
        (
            {
                "model": "echo",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "xml"},
            },
            "response_format",
        ),
        ({"model": "echo", "messages": "hello"}, "messages"),
    ],
)
def test_malformed_chat_bodies_get_openai_400s(client: httpx.Client, body: dict, param: str) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param


def test_not_json_and_wrong_types_are_400_not_500(client: httpx.Client) -> None:
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/tokenize", "/v1/edits"):
        for content in (b"{not json", b"[]", b'"x"', b""):
            response = client.post(path, content=content, headers={"content-type": "application/json"})
            assert response.status_code == 400, (path, content, response.text)
            assert response.json()["error"]["type"] == "invalid_request_error"
    response = client.post("/v1/embeddings", json={"model": "echo", "input": [1.5, "x"]})
    assert response.status_code == 400
    response = client.post("/v1/embeddings", json={"model": "echo", "input": "x", "encoding_format": "hex"})
    assert response.json()["error"]["param"] == "encoding_format"


def test_backend_validation_errors_reach_the_client_as_400(client: httpx.Client) -> None:
    response = client.post("/v1/detokenize", json={"model": "echo", "tokens": [999]})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Token ids must be between 0 and 255"
    assert response.json()["error"]["param"] == "tokens"


def test_unknown_model_is_a_404_in_openai_shape(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions", json={"model": "missing", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and "missing" in error["message"]
