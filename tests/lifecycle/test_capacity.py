"""The running cap: LRU eviction of an idle model, busy wait then 503, pinned models, the fair bounded
queue."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from kernai.testing import KernaiServer

from .conftest import chat, gone, instance, make_server, wait_for

TEN_WORDS = " ".join(f"w{i}" for i in range(10))  # 1 s at 0.1 s a word
FORTY_WORDS = " ".join(f"w{i}" for i in range(40))


def in_background(target, *args):  # type: ignore[no-untyped-def]
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.update(response=target(*args)))
    thread.start()
    return thread, result


def rejected_queue_full(client: httpx.Client) -> float:
    metric = r'^kernai_rejected_requests_total\{reason="queue_full"\} (\S+)$'
    found = re.search(metric, client.get("/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_second_model_evicts_the_idle_first_and_its_process_ends(capped: KernaiServer) -> None:
    with capped.client() as client:
        assert chat(client, "alpha").status_code == 200
        first = instance(client, "alpha")["pid"]
        assert psutil.pid_exists(first)
        response = chat(client, "beta")
        assert response.status_code == 200, response.text
        assert instance(client, "alpha")["status"] == "stopped"
        assert instance(client, "beta")["status"] == "running"
        wait_for(lambda: gone(first), what="the evicted worker to exit")
        metrics = client.get("/metrics").text
        assert 'kernai_model_evictions_total{model="alpha",reason="lru"}' in metrics


@pytest.mark.slow
def test_with_the_running_model_busy_a_request_waits_then_gets_503(capped: KernaiServer) -> None:
    with capped.client() as client:
        assert chat(client, "beta").status_code == 200
        thread, busy = in_background(chat, client, "beta", FORTY_WORDS)
        wait_for(lambda: instance(client, "beta")["active_requests"] == 1, what="beta to be busy")
        began = time.monotonic()
        refused = chat(client, "alpha")
        waited = time.monotonic() - began
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "capacity_busy"
        assert int(refused.headers["retry-after"]) >= 1
        assert 1.4 <= waited < 3.5, waited  # busy_timeout is 1.5 s; beta stays busy for 4 s
        thread.join(30)
        assert busy["response"].status_code == 200
        assert busy["response"].json()["choices"][0]["message"]["content"] == FORTY_WORDS


@pytest.mark.slow
def test_a_model_requested_while_another_loads_waits_for_it(tmp_path: Path) -> None:
    """Both at once under a cap of one: the second waits for the first to load and answer, then evicts it."""
    settings = {"max_running_models": 1, "busy_timeout": 30}
    with make_server(tmp_path, {"a": {}, "b": {}}, settings) as server, server.client() as client:
        barrier = threading.Barrier(2)

        def at_once(model: str) -> httpx.Response:
            barrier.wait()
            return chat(client, model)

        requests = [in_background(at_once, model) for model in ("a", "b")]
        for thread, _ in requests:
            thread.join(60)
        replies = [result["response"] for _, result in requests]
        assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
        assert [r.json()["choices"][0]["message"]["content"] for r in replies] == ["hello there"] * 2
        assert sorted(instance(client, m)["status"] for m in ("a", "b")) == ["running", "stopped"]


@pytest.mark.slow
def test_a_full_queue_answers_503_with_retry_after(capped: KernaiServer) -> None:
    with capped.client() as client:
        assert chat(client, "beta").status_code == 200
        threads = [in_background(chat, client, "beta", TEN_WORDS) for _ in range(3)]  # 1 runs, 2 wait
        wait_for(lambda: instance(client, "beta")["queued_requests"] == 2, what="two queued requests")
        before = rejected_queue_full(client)
        refused = chat(client, "beta")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) >= 1
        assert rejected_queue_full(client) == before + 1
        for thread, result in threads:
            thread.join(30)
            assert result["response"].status_code == 200  # served in turn


def test_a_pinned_model_is_never_evicted(capped: KernaiServer) -> None:
    with capped.client() as client:
        assert chat(client, "beta").status_code == 200
        pinned = client.put("/api/models/toggle-pinned/beta/pin")
        assert pinned.status_code == 200 and pinned.json()["pinned"] is True
        source = Path(instance(client, "beta")["source"])
        assert yaml.safe_load(source.read_text())["pinned"] is True
        refused = chat(client, "alpha")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "capacity_pinned"
        assert instance(client, "beta")["status"] == "running"
        assert client.put("/api/models/toggle-pinned/beta/unpin").json()["pinned"] is False
        assert chat(client, "alpha").status_code == 200
        assert client.put("/api/models/toggle-pinned/beta/glue").status_code == 400


@pytest.mark.slow
def test_without_lru_eviction_the_cap_is_a_409(tmp_path: Path) -> None:
    settings = {"max_running_models": 1, "lru_eviction": False}
    with make_server(tmp_path, {"a": {}, "b": {}}, settings) as server, server.client() as client:
        assert chat(client, "a").status_code == 200
        refused = chat(client, "b")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "max_running_models"
        started = client.post("/api/v1/instances/b/start")
        assert started.status_code == 409 and "Maximum number of running models" in started.json()["error"]
        assert client.post("/api/v1/instances/a/stop").json()["status"] == "stopped"
        assert client.post("/api/v1/instances/b/start").json()["status"] == "running"


@pytest.mark.slow
def test_force_eviction_stops_a_busy_model_after_the_wait(tmp_path: Path) -> None:
    settings = {"max_running_models": 1, "busy_timeout": 0.5, "force_eviction": True}
    with make_server(tmp_path, {"a": {"delay": 0.1}, "b": {}}, settings) as server, server.client() as client:
        assert chat(client, "a").status_code == 200
        thread, busy = in_background(chat, client, "a", FORTY_WORDS)
        wait_for(lambda: instance(client, "a")["active_requests"] == 1, what="a to be busy")
        assert chat(client, "b").status_code == 200
        thread.join(30)
        assert busy["response"].status_code == 503  # its worker was stopped under it
        error = busy["response"].json()["error"]
        assert (
            error["code"] == "model_stopped"
            and "(force-evicted while busy to make room for 'b')" in (error["message"])
        )
        assert instance(client, "a")["status"] == "stopped"


def test_parallel_requests_run_together_in_one_worker(lifecycle: KernaiServer) -> None:
    with lifecycle.client() as client:
        created = client.post(
            "/api/v1/instances/twin",
            json={"backend_type": "reference", "backend_options": {"delay": 0.1}, "parallel": 2},
        )
        assert created.status_code == 201, created.text
        assert chat(client, "twin").status_code == 200
        threads = [in_background(chat, client, "twin", TEN_WORDS) for _ in range(2)]
        both = wait_for(
            lambda: (i := instance(client, "twin"))["active_requests"] == 2 and i,
            what="two requests running at once",
        )  # with parallel 1, one would be queued
        assert both["queued_requests"] == 0
        for thread, result in threads:
            thread.join(30)
            assert result["response"].status_code == 200
        assert client.delete("/api/v1/instances/twin").status_code == 204
