"""Continuous batching on the tiny model: ``tiny-p4`` has four slots of 256 tokens (context 1024),
``tiny`` one slot of 1024. The tiny model's F32 weights give the same logits whatever else is in
the batch, so a request's text in a full batch is exactly its text alone."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer

from .conftest import monitor_status, openai_stream, run_together

HELLO = [{"role": "user", "content": "hello"}]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}, "count": {"type": "integer"}},
    "required": ["answer", "count"],
    "additionalProperties": False,
}


def chat(client: httpx.Client, model: str = "tiny-p4", **body: Any) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={"model": model, "messages": HELLO, **body})
    assert response.status_code == 200, response.text
    return response.json()


def streamed_chat(server: KernaiServer, model: str = "tiny-p4", **body: Any) -> dict[str, Any]:
    """A streamed chat's text, finish reason and usage."""
    return openai_stream(server, "/v1/chat/completions", {"model": model, "messages": HELLO, **body})


def test_four_streams_with_their_own_seeds_stops_limits_and_schema(
    llama_server: KernaiServer, client: httpx.Client
) -> None:
    greedy = chat(client, max_tokens=24, temperature=0)["choices"][0]["message"]["content"]
    stop = greedy[5:8]
    seeded = chat(client, max_tokens=30, temperature=1.2, top_k=0, top_p=1.0, min_p=0.0, seed=7)
    results = run_together(
        {
            "seeded": lambda: streamed_chat(
                llama_server, max_tokens=30, temperature=1.2, top_k=0, top_p=1.0, min_p=0.0, seed=7
            ),
            "stopped": lambda: streamed_chat(llama_server, max_tokens=24, temperature=0, stop=[stop]),
            "short": lambda: streamed_chat(llama_server, max_tokens=5, temperature=0.9, seed=1),
            "schema": lambda: streamed_chat(
                llama_server,
                max_tokens=60,
                temperature=0,
                response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA}},
            ),
        }
    )
    assert results["seeded"]["text"] == seeded["choices"][0]["message"]["content"]
    assert results["seeded"]["finish_reason"] == "length"
    assert results["seeded"]["usage"]["completion_tokens"] == 30
    assert results["stopped"]["text"] == greedy[: greedy.index(stop)]
    assert results["stopped"]["finish_reason"] == "stop"
    assert results["short"]["finish_reason"] == "length"
    assert results["short"]["usage"]["completion_tokens"] == 5
    data = json.loads(results["schema"]["text"])
    assert set(data) == {"answer", "count"} and data["answer"] in ("yes", "no")
    assert results["schema"]["finish_reason"] == "stop"


def test_same_seed_alone_gives_the_same_text_with_one_slot_and_with_four(client: httpx.Client) -> None:
    body = {"max_tokens": 24, "temperature": 1.0, "seed": 42, "logprobs": True, "top_logprobs": 2}
    one, four = chat(client, model="tiny", **body), chat(client, model="tiny-p4", **body)
    assert one["choices"][0]["message"]["content"] == four["choices"][0]["message"]["content"]
    logprobs = [[item["logprob"] for item in c["choices"][0]["logprobs"]["content"]] for c in (one, four)]
    assert logprobs[0] == pytest.approx(logprobs[1], abs=1e-4)  # prompt-cache hits may round differently


def test_a_shared_prefix_is_read_from_the_cache(client: httpx.Client) -> None:
    story = "once upon a time there was a little robot who liked to count the stars " * 3

    def complete(prompt: str, **body: Any) -> dict[str, Any]:
        response = client.post(
            "/v1/completions", json={"model": "tiny-p4", "prompt": prompt, "max_tokens": 4, **body}
        )
        assert response.status_code == 200, response.text
        return response.json()["usage"]

    def tokens(text: str) -> list[int]:
        return client.post("/v1/tokenize", json={"model": "tiny-p4", "content": text}).json()["tokens"]

    first = complete(story + "and")
    longer = story + "and then the robot slept"
    second = complete(longer)
    before, after = tokens(story + "and"), tokens(longer)
    shared = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), len(before))
    assert second["prompt_tokens"] == len(tokens(longer))
    assert shared <= second["prompt_tokens_details"]["cached_tokens"] < second["prompt_tokens"]
    assert first["prompt_tokens_details"]["cached_tokens"] < shared  # the first one computed its prompt
    # a chat that grows by a turn does not read its history again
    turn = [{"role": "user", "content": story}]
    answer = chat(client, messages=turn, max_tokens=8, temperature=0)
    grown = [
        *turn,
        {"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
        {"role": "user", "content": "and then?"},
    ]
    again = chat(client, messages=grown, max_tokens=4, temperature=0)["usage"]
    assert again["prompt_tokens_details"]["cached_tokens"] >= answer["usage"]["prompt_tokens"]


def test_a_prompt_too_long_for_a_slot_is_a_400_while_the_others_go_on(
    llama_server: KernaiServer, client: httpx.Client
) -> None:
    too_long = "hello " * 300  # fits the 1024-token context, not a 256-token slot

    def refused() -> dict[str, Any]:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "tiny-p4", "messages": [{"role": "user", "content": too_long}]},
        )
        assert response.status_code == 400, response.text
        return response.json()["error"]

    results = run_together(
        {
            "running": lambda: streamed_chat(llama_server, max_tokens=200, temperature=0.8, seed=3),
            "refused": refused,
        }
    )
    assert results["refused"]["code"] == "context_length_exceeded"
    assert "256" in results["refused"]["message"] and "1024" in results["refused"]["message"]
    assert results["running"]["usage"]["completion_tokens"] == 200
    assert results["running"]["finish_reason"] == "length"
    assert chat(client, model="tiny", messages=[{"role": "user", "content": too_long}], max_tokens=2)


def test_the_status_shows_each_slot(client: httpx.Client) -> None:
    chat(client, max_tokens=3, temperature=0.5, seed=9, top_k=7)
    facts = monitor_status(client, "tiny-p4")
    assert facts["parallel"] == 4 and facts["n_ctx"] == facts["context_size"] == 1024
    slots = facts["slots"]
    assert [slot["id"] for slot in slots] == [0, 1, 2, 3]
    assert all(slot["n_ctx"] == 256 and slot["state"] == "idle" for slot in slots)
    last = next(slot for slot in slots if slot["params"].get("seed") == 9)
    assert last["params"]["top_k"] == 7 and last["params"]["temperature"] == 0.5
    assert last["params"]["n_predict"] == 3 and last["generated_tokens"] == 3
    assert last["prompt_tokens"] > last["cached_tokens"] >= 0
    single = monitor_status(client, "tiny")
    assert single["parallel"] == 1 and [slot["n_ctx"] for slot in single["slots"]] == [1024]


def test_embeddings_and_tokens_beside_generation_leave_it_alone(
    llama_server: KernaiServer, client: httpx.Client
) -> None:
    body = {"max_tokens": 200, "temperature": 0, "messages": [{"role": "user", "content": "tell me more"}]}
    alone = streamed_chat(llama_server, **body)
    done = threading.Event()
    beside: list[int] = []

    def meanwhile() -> dict[str, Any]:
        while not done.is_set() or not beside:
            vectors = client.post("/v1/embeddings", json={"model": "tiny-p4", "input": ["a b c", "hello"]})
            tokens = client.post("/v1/tokenize", json={"model": "tiny-p4", "content": "hello"}).json()[
                "tokens"
            ]
            text = client.post("/v1/detokenize", json={"model": "tiny-p4", "tokens": tokens})
            assert vectors.status_code == 200 and len(vectors.json()["data"]) == 2, vectors.text
            assert text.json()["content"].endswith("hello")
            beside.append(len(tokens))
        return {}

    def generate() -> dict[str, Any]:
        try:
            return streamed_chat(llama_server, **body)
        finally:
            done.set()

    results = run_together({"generation": generate, "meanwhile": meanwhile})
    assert results["generation"]["text"] == alone["text"]  # the KV cache was not disturbed
    assert results["generation"]["usage"]["completion_tokens"] == 200 and beside
