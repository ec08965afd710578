"""Prometheus metrics, request and backend traces, backend logs and their live WebSocket."""

from __future__ import annotations

import re
import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from kernai.testing import KernaiServer

from .conftest import chat, wait_for


def samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_the_requests_just_made(client: httpx.Client) -> None:
    chat(client, "echo")  # loaded, so the load time is already recorded
    before = samples(client)
    for _ in range(2):
        assert chat(client, "echo", "one two three").status_code == 200
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
    ) as response:
        assert response.status_code == 200
        response.read()
    assert client.post("/v1/chat/completions", json={"model": "ghost", "messages": []}).status_code in (
        400,
        404,
    )
    after = samples(client)
    route = {"method": "POST", "route": "/v1/chat/completions"}
    assert (
        value(after, "kernai_http_requests_total", **route, status="200", model="echo")
        - value(before, "kernai_http_requests_total", **route, status="200", model="echo")
        == 3
    )
    assert (
        value(after, "kernai_completion_tokens_total", model="echo")
        - value(before, "kernai_completion_tokens_total", model="echo")
        == 3 + 3 + 2
    )
    assert (
        value(after, "kernai_time_to_first_token_seconds_count", model="echo")
        - value(before, "kernai_time_to_first_token_seconds_count", model="echo")
        == 1
    )
    assert value(after, "kernai_http_request_duration_seconds_count", **route, model="echo") >= 3
    assert value(after, "kernai_model_load_seconds_count", model="echo") >= 1
    assert value(after, "kernai_models_loaded") >= 1
    assert ("kernai_queue_depth", frozenset({("model", "echo")})) in after


def test_traces_record_requests_and_backend_calls_and_can_be_cleared(client: httpx.Client) -> None:
    assert client.post("/api/traces/clear").status_code == 200
    client.post("/api/backend-traces/clear")
    long_text = "word " * 2000
    assert chat(client, "echo", long_text).status_code == 200
    traces = client.get("/api/traces").json()
    trace = next(t for t in traces if t["path"] == "/v1/chat/completions")
    assert trace["status"] == 200 and trace["model"] == "echo" and trace["duration_ms"] > 0
    assert len(trace["request"]) < 2100
    assert int(re.search(r"\[truncated, (\d+) bytes in all\]$", trace["request"]).group(1)) > len(long_text)
    assert '"chat.completion"' in trace["response"]
    backend = client.get("/api/backend-traces").json()
    assert backend[-1]["model"] == "echo" and backend[-1]["capability"] == "chat"
    assert backend[-1]["completion_tokens"] == 100  # max_tokens
    assert client.post("/api/traces/clear").json()["cleared"] >= 1
    assert client.get("/api/traces").json() == []


def test_backend_logs_list_read_and_clear(client: httpx.Client) -> None:
    chat(client, "echo")
    summary = {entry["model"]: entry for entry in client.get("/api/backend-logs").json()}
    assert summary["echo"]["lines"] > 0
    lines = client.get("/api/backend-logs/echo").json()["lines"]
    assert any("starting worker" in line for line in lines)
    assert client.post("/api/backend-logs/echo/clear").json()["cleared"] == len(lines)
    assert client.get("/api/backend-logs/echo").json()["lines"] == []
    assert client.get("/api/backend-logs/nobody").status_code == 404


def test_the_websocket_receives_a_log_line_written_after_it_connected(
    lifecycle: KernaiServer, client: httpx.Client
) -> None:
    url = lifecycle.url.replace("http://", "ws://") + "/ws/backend-logs/echo"
    with connect(url, open_timeout=10) as socket:
        assert client.post("/api/v1/instances/echo/restart").status_code == 200
        received = []
        while not any("starting worker for 'echo'" in line for line in received):
            assert len(received) < 50, received
            received.append(str(socket.recv(timeout=10)))


def test_the_monitor_shows_the_cpu_a_busy_worker_uses(client: httpx.Client) -> None:
    assert chat(client, "echo").status_code == 200
    monitor = lambda: client.get("/backend/monitor", params={"model": "echo"}).json()  # noqa: E731
    texts = ["abcdefgh" * 125_000] * 8  # 8 MB for the reference backend to count byte by byte, in Python
    replies: list[httpx.Response] = []
    busy = threading.Thread(
        target=lambda: replies.append(client.post("/v1/embeddings", json={"model": "echo", "input": texts}))
    )
    busy.start()
    wait_for(lambda: monitor()["active_requests"] == 1, what="a busy worker")
    time.sleep(0.3)
    facts = monitor()  # the CPU used since the previous reading (a new psutil.Process would say 0.0)
    busy.join(60)
    assert replies[0].status_code == 200 and len(replies[0].json()["data"]) == 8
    assert facts["cpu_percent"] > 0, facts
