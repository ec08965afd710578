"""The Anthropic and Open Responses surfaces on the tiny model, where the engine's counts are exact:
the prompt size in Anthropic's ``message_start``, and a cancelled background response stopping the
generation in the worker."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

HELLO_PROMPT = "<s><|user|>hello\n<|assistant|>"
"""The tiny model's chat template applied to one user turn, ``hello``."""


def prompt_tokens(client: httpx.Client, text: str) -> int:
    response = client.post("/v1/tokenize", json={"model": "tiny", "content": text, "add_special": False})
    return len(response.json()["tokens"])


def worker_status(client: httpx.Client) -> dict[str, Any]:
    return client.get("/backend/monitor", params={"model": "tiny"}).json()["status"]


def test_anthropic_message_start_counts_the_prompt(client: httpx.Client) -> None:
    body = {
        "model": "tiny",
        "max_tokens": 6,
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    events = {}
    for line in response.text.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            events.setdefault(event["type"], event)
    expected = prompt_tokens(client, HELLO_PROMPT)
    assert events["message_start"]["message"]["usage"] == {"input_tokens": expected, "output_tokens": 1}
    assert events["message_delta"]["usage"] == {"input_tokens": expected, "output_tokens": 6}
    whole = client.post("/v1/messages", json={**body, "stream": False}).json()
    assert whole["usage"] == {"input_tokens": expected, "output_tokens": 6}


def test_cancelling_a_background_response_stops_the_worker(client: httpx.Client) -> None:
    before = worker_status(client)["tokens_generated"]
    created = client.post(
        "/v1/responses",
        json={
            "model": "tiny",
            "input": "hello",
            "temperature": 0,
            "max_output_tokens": 1000,
            "background": True,
        },
    )
    assert created.status_code == 200, created.text
    response_id = created.json()["id"]
    deadline = time.monotonic() + 30
    while not worker_status(client)["active_generations"]:
        assert time.monotonic() < deadline, "the background response never started generating"
        time.sleep(0.01)
    cancelled = client.post(f"/v1/responses/{response_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    at_cancel = worker_status(client)
    deadline = time.monotonic() + 3
    while (status := worker_status(client))["active_generations"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status["active_generations"] == 0, "the worker went on generating after the cancel"
    time.sleep(0.3)
    after = worker_status(client)["tokens_generated"]
    assert after == status["tokens_generated"]
    assert after - at_cancel["tokens_generated"] < 50 and after - before < 1000
    stored = client.get(f"/v1/responses/{response_id}").json()
    assert stored["status"] == "cancelled"
