"""Continuous batching on the real model: ``gemma-p4`` is gemma-3-270m with ``parallel: 4`` (four
slots of 512 tokens). Quantized kernels round differently with the batch's size, so a sampled text in
a full batch may part from its text alone after a while, as llama-server's does; these tests check
what each request must get whatever shares its batch."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer

from .conftest import monitor_status, openai_stream, run_together, stream_lines

pytestmark = pytest.mark.slow  # gemma-3-270m

COUNTING = "Count from one to fifty: one, two, three, four,"


def gemma_stream(server: KernaiServer, path: str, **body: Any) -> dict[str, Any]:
    """A streamed chat or completion on ``gemma-p4``: text, finish reason, usage."""
    return openai_stream(server, path, {"model": "gemma-p4", **body})


def test_four_streams_with_their_own_seeds_stops_limits_and_schema(llama_server: KernaiServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    story = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
    results = run_together(
        {
            "seed 1": lambda: gemma_stream(
                llama_server, "/v1/chat/completions", messages=story, max_tokens=24, temperature=0.8, seed=1
            ),
            "seed 2": lambda: gemma_stream(
                llama_server, "/v1/chat/completions", messages=story, max_tokens=31, temperature=0.8, seed=2
            ),
            "stop": lambda: gemma_stream(
                llama_server, "/v1/completions", prompt=COUNTING, max_tokens=60, stop=[" ten"]
            ),
            "schema": lambda: gemma_stream(
                llama_server,
                "/v1/chat/completions",
                messages=[{"role": "user", "content": "Name a large city and its population as JSON."}],
                max_tokens=80,
                response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
            ),
        },
        timeout=300,
    )
    for name, limit in (("seed 1", 24), ("seed 2", 31)):
        result = results[name]
        tokens = result["usage"]["completion_tokens"]
        assert result["text"] and tokens <= limit
        assert result["finish_reason"] == ("length" if tokens == limit else "stop")
    assert results["seed 1"]["text"] != results["seed 2"]["text"]
    stopped = results["stop"]
    assert stopped["finish_reason"] == "stop" and "nine" in stopped["text"] and "ten" not in stopped["text"]
    data = json.loads(results["schema"]["text"])
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)
    assert results["schema"]["finish_reason"] == "stop"


def test_same_seed_alone_gives_the_same_text_with_one_slot_and_with_four(client: httpx.Client) -> None:
    def text(model: str) -> str:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Tell me about the sea."}],
            "max_tokens": 24,
            "temperature": 1.0,
            "seed": 5,
        }
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]["message"]["content"]

    assert text("gemma") == text("gemma-p4")


def test_every_surface_runs_at_once_in_one_worker(llama_server: KernaiServer, client: httpx.Client) -> None:
    common = {"model": "gemma-p4", "stream": True, "temperature": 0}
    chat = [{"role": "user", "content": COUNTING}]
    # different lengths, so that the one of five that waits for a slot joins while others still run
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "chat": ("/v1/chat/completions", {**common, "messages": chat, "max_tokens": 16}),
        "completion": ("/v1/completions", {**common, "prompt": COUNTING, "max_tokens": 28}),
        "anthropic": ("/v1/messages", {**common, "messages": chat, "max_tokens": 40}),
        "responses": ("/v1/responses", {**common, "input": COUNTING, "max_output_tokens": 52}),
        "locallab": (
            "/generate",
            {"model_id": "gemma-p4", "prompt": COUNTING, "stream": True, "max_tokens": 64},
        ),
    }
    pid = client.get("/backend/monitor", params={"model": "gemma-p4"}).json()["pid"]
    results = run_together(
        {
            name: (lambda path=path, body=body: stream_lines(llama_server, path, body))
            for name, (path, body) in calls.items()
        },
        timeout=300,
    )
    spans = {name: (result["first"], result["last"]) for name, result in results.items()}
    for name, (start, end) in spans.items():
        assert len(results[name]["lines"]) > 5, (name, results[name]["lines"])
        overlapping = [other for other, (s, e) in spans.items() if other != name and s < end and start < e]
        assert len(overlapping) >= 2, (name, spans)
    at_once = max(sum(s <= start < e for s, e in spans.values()) for start, _ in spans.values())
    assert at_once == 4, spans  # four slots busy at one moment, the fifth request waited for one
    assert client.get("/backend/monitor", params={"model": "gemma-p4"}).json()["pid"] == pid  # one worker
    assert monitor_status(client, "gemma-p4")["tokens_generated"] >= 5 * 30


def test_a_cancelled_stream_frees_its_slot_at_once(llama_server: KernaiServer, client: httpx.Client) -> None:
    body = {"model": "gemma-p4", "prompt": COUNTING, "max_tokens": 400, "stream": True, "temperature": 0.8}
    with httpx.Client(base_url=llama_server.url, timeout=120) as http:
        streams = [http.stream("POST", "/v1/completions", json={**body, "seed": seed}) for seed in range(4)]
        responses = [stream.__enter__() for stream in streams]
        try:
            lines = [response.iter_lines() for response in responses]
            for each in lines:  # all four are generating
                assert next(line for line in each if line.startswith("data: "))
            states = [slot["state"] for slot in monitor_status(client, "gemma-p4")["slots"]]
            assert states == ["processing"] * 4
            streams[0].__exit__(None, None, None)  # the client goes away
            started = time.monotonic()
            quick = client.post(
                "/v1/completions", json={"model": "gemma-p4", "prompt": "Hi", "max_tokens": 2}
            )
            waited = time.monotonic() - started
            assert quick.status_code == 200, quick.text
            assert waited < 10, f"the fifth request waited {waited:.1f} s for a slot"
            still = monitor_status(client, "gemma-p4")["active_generations"]
            assert still == 3  # the other three still stream
        finally:
            for stream in streams[1:]:
                stream.__exit__(None, None, None)
    deadline = time.monotonic() + 10
    while monitor_status(client, "gemma-p4")["active_generations"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [slot["state"] for slot in monitor_status(client, "gemma-p4")["slots"]] == ["idle"] * 4
