"""Idle unload, crash restarts, on-demand start, enable/disable, the llamactl instances API and LocalLab
routes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from kernai.testing import KernaiServer

from .conftest import chat, gone, instance, wait_for


def test_idle_unload_ends_the_worker_process(client: httpx.Client) -> None:
    assert chat(client, "napper").status_code == 200
    pid = instance(client, "napper")["pid"]
    assert psutil.pid_exists(pid)
    wait_for(lambda: instance(client, "napper")["status"] == "stopped", timeout=10, what="idle unload")
    wait_for(lambda: gone(pid), what="the worker to exit")
    assert 'kernai_model_evictions_total{model="napper",reason="idle"} 1.0' in client.get("/metrics").text
    assert chat(client, "napper").status_code == 200  # loads again on demand


def test_a_killed_worker_restarts_then_fails_when_it_keeps_crashing(client: httpx.Client) -> None:
    assert chat(client, "phoenix").status_code == 200
    first = instance(client, "phoenix")["pid"]
    os.kill(first, signal.SIGKILL)
    restarted = wait_for(
        lambda: (i := instance(client, "phoenix"))["pid"] not in (None, first) and i, what="a restart"
    )
    assert restarted["status"] == "running" and restarted["restarts"] == 1
    os.kill(restarted["pid"], signal.SIGKILL)  # max_restarts is 1: no second restart
    failed = wait_for(
        lambda: (i := instance(client, "phoenix"))["status"] == "failed" and i, what="failed status"
    )
    assert "exited unexpectedly" in failed["error"]
    assert any("exited unexpectedly" in line for line in failed["log_tail"])
    assert any("starting worker" in line for line in failed["log_tail"])
    refused = chat(client, "phoenix")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_failed"
    assert 'kernai_worker_restarts_total{model="phoenix"} 1.0' in client.get("/metrics").text
    started = client.post("/api/v1/instances/phoenix/start")
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert chat(client, "phoenix").status_code == 200


def test_without_on_demand_start_a_stopped_model_is_a_503_until_started(client: httpx.Client) -> None:
    refused = chat(client, "manual")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_running"
    assert client.post("/api/v1/instances/manual/start").json()["status"] == "running"
    assert chat(client, "manual").status_code == 200
    restarted = client.post("/api/v1/instances/manual/restart").json()
    assert restarted["status"] == "running"
    assert client.post("/api/v1/instances/manual/stop").json()["status"] == "stopped"
    assert chat(client, "manual").status_code == 503


def test_disable_and_enable_are_kept_in_the_model_file(client: httpx.Client) -> None:
    assert chat(client, "echo").status_code == 200
    source = Path(instance(client, "echo")["source"])
    disabled = client.put("/api/models/echo/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert yaml.safe_load(source.read_text())["disabled"] is True
    assert instance(client, "echo")["status"] == "stopped"
    refused = chat(client, "echo")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_disabled"
    assert client.put("/api/models/toggle-state/echo/enable").json()["disabled"] is False
    assert chat(client, "echo").status_code == 200
    assert client.put("/api/models/echo/explode").status_code == 400
    assert client.put("/api/models/nobody/disable").status_code == 404


def test_instances_are_created_used_updated_and_deleted(client: httpx.Client) -> None:
    options = {
        "backend_type": "reference",
        "backend_options": {"dimensions": 4},
        "idle_timeout": 5,
        "max_restarts": 2,
        "restart_delay": 0.5,
    }
    created = client.post("/api/v1/instances/made", json=options)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "stopped" and body["source"] == "instance" and isinstance(body["id"], int)
    assert body["options"]["idle_timeout"] == 5 and body["options"]["backend_options"]["dimensions"] == 4
    assert client.post("/api/v1/instances/made", json=options).status_code == 409
    bad = client.post(
        "/api/v1/instances/bad", json={"backend_type": "reference", "backend_options": {"colour": 1}}
    )
    assert bad.status_code == 400 and "colour" in bad.json()["error"]
    assert client.post("/api/v1/instances/x", json={"backend_type": "nope"}).status_code == 400
    embedded = client.post("/v1/embeddings", json={"model": "made", "input": "hi"})
    assert embedded.status_code == 200 and len(embedded.json()["data"][0]["embedding"]) == 4
    listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert listed["made"]["created"] == body["created"] > 0  # the instance's creation, as llamactl shows it

    proxied = client.post(
        "/api/v1/instances/made/proxy/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "through the proxy"}]},
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["model"] == "made"
    assert proxied.json()["choices"][0]["message"]["content"] == "through the proxy"
    assert client.get("/api/v1/instances/made/proxy/health").json() == {"status": "ok"}
    logs = client.get("/api/v1/instances/made/logs", params={"lines": 3})
    assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
    assert 0 < len(logs.text.splitlines()) <= 3

    pid = instance(client, "made")["pid"]
    updated = client.put("/api/v1/instances/made", json={**options, "backend_options": {"dimensions": 6}})
    assert updated.status_code == 200 and updated.json()["status"] == "running"
    assert updated.json()["pid"] != pid  # restarted with the new options
    embedded = client.post("/v1/embeddings", json={"model": "made", "input": "hi"})
    assert len(embedded.json()["data"][0]["embedding"]) == 6

    assert client.delete("/api/v1/instances/echo").status_code == 409  # defined by a YAML file
    assert client.delete("/api/v1/instances/made").status_code == 204
    missing = client.get("/api/v1/instances/made")
    assert missing.status_code == 404 and "error" in missing.json()
    wait_for(lambda: gone(updated.json()["pid"]), what="the deleted instance's worker to exit")


def test_an_instance_whose_config_broke_can_still_be_replaced_and_deleted(
    client: httpx.Client, lifecycle: KernaiServer
) -> None:
    weights = lifecycle.models_dir / "orphan-weights.bin"
    weights.write_bytes(b"weights")
    options = {"backend_type": "reference", "backend_options": {"model": weights.name}}
    assert client.post("/api/v1/instances/orphan", json=options).status_code == 201
    weights.unlink()
    assert (
        client.post("/api/v1/instances/orphan-reloads", json={"backend_type": "reference"}).status_code == 201
    )
    broken = client.get("/api/v1/instances/orphan")
    assert broken.status_code == 503 and "parameters.model" in broken.json()["error"]

    replaced = client.put("/api/v1/instances/orphan", json={"backend_type": "reference"})
    assert replaced.status_code == 200, replaced.text
    assert chat(client, "orphan").status_code == 200
    weights.write_bytes(b"weights")
    assert client.put("/api/v1/instances/orphan", json=options).status_code == 200
    weights.unlink()
    assert client.delete("/api/v1/instances/orphan-reloads").status_code == 204
    assert client.get("/api/v1/instances/orphan").status_code == 503
    assert client.delete("/api/v1/instances/orphan").status_code == 204
    assert client.get("/api/v1/instances/orphan").status_code == 404


def test_a_request_in_flight_when_its_model_is_unloaded_is_told_so_not_of_a_crash(
    client: httpx.Client,
) -> None:
    slow = {"backend_type": "reference", "backend_options": {"delay": 0.1}}  # 0.1 s a word
    assert client.post("/api/v1/instances/sleeper", json=slow).status_code == 201
    text = " ".join(f"w{i}" for i in range(60))

    try:
        answer: dict[str, httpx.Response] = {}
        waiting = threading.Thread(target=lambda: answer.update(response=chat(client, "sleeper", text)))
        waiting.start()
        wait_for(lambda: instance(client, "sleeper")["active_requests"] == 1, what="the request to run")
        assert client.post("/backend/shutdown", json={"model": "sleeper"}).status_code == 200  # LocalAI
        waiting.join(30)
        assert answer["response"].status_code == 503
        errors = [answer["response"].json()["error"]]

        body = {"model": "sleeper", "stream": True, "messages": [{"role": "user", "content": text}]}
        with client.stream("POST", "/v1/chat/completions", json={**body, "max_tokens": 100}) as streamed:
            lines = streamed.iter_lines()
            assert streamed.status_code == 200 and next(lines).startswith("data: ")  # under way
            assert client.post("/api/v1/instances/sleeper/stop").status_code == 200  # llamactl
            events = [line.removeprefix("data: ") for line in lines if line.startswith("data: {")]
        errors.append(json.loads(events[-1])["error"])

        for error in errors:
            assert (error["type"], error["code"]) == ("server_error", "model_stopped"), error
            assert error["message"].startswith("Model 'sleeper' was stopped while the request ran (unloaded)")
        assert instance(client, "sleeper")["status"] == "stopped"
        assert instance(client, "sleeper")["restarts"] == 0  # not restarted as after a crash
        assert 'kernai_worker_crashes_total{model="sleeper"}' not in client.get("/metrics").text
        assert chat(client, "sleeper", "again").status_code == 200  # it loads again on demand
    finally:
        client.delete("/api/v1/instances/sleeper")


def test_version_nodes_and_config(client: httpx.Client) -> None:
    assert client.get("/api/v1/version").json()["version"]
    assert client.get("/api/v1/nodes").json() == {"main": {"address": ""}}
    assert client.get("/api/v1/nodes/main").status_code == 200
    assert client.get("/api/v1/nodes/elsewhere").status_code == 404
    config = client.get("/api/v1/config").json()
    assert config["max_running_models"] == 0 and config["management_keys"] == []
    listed = {i["name"]: i for i in client.get("/api/v1/instances").json()}
    assert {"napper", "phoenix", "manual", "echo"} <= set(listed)


def test_locallab_model_routes(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "healthy"
    loaded = client.post("/models/load", json={"model_id": "echo"})
    assert loaded.status_code == 200 and loaded.json()["status"] == "success"
    assert chat(client, "echo").status_code == 200
    current = client.get("/models/current").json()
    assert current["model_id"] == "echo" and current["is_loaded"] is True
    info = client.get("/system/info").json()
    assert "echo" in info["loaded_models"] and info["request_count"] > 0 and info["memory_total"] > 0
    assert client.post("/models/unload", json={"model_id": "echo"}).json()["model_id"] == "echo"
    assert instance(client, "echo")["status"] == "stopped"
    missing = client.post("/models/load", json={"model_id": "nope"})
    assert missing.status_code == 404 and "detail" in missing.json()


def test_an_instances_environment_reaches_its_worker_process(client: httpx.Client) -> None:
    options = {
        "backend_type": "reference",
        "environment": {"KERNAI_TEST_MARK": "marked", "OMP_NUM_THREADS": "3"},
    }
    assert client.post("/api/v1/instances/marked", json=options).status_code == 201
    assert chat(client, "marked").status_code == 200
    pid = client.get("/backend/monitor", params={"model": "marked"}).json()["pid"]
    environ = psutil.Process(pid).environ()
    assert (environ["KERNAI_TEST_MARK"], environ["OMP_NUM_THREADS"]) == ("marked", "3")
    assert "KERNAI_TEST_MARK" not in os.environ  # the server did not pass its own on
    assert client.delete("/api/v1/instances/marked").status_code == 204


@pytest.mark.slow
def test_the_global_idle_timeout_unloads_a_model_without_its_own(idler: KernaiServer) -> None:
    with idler.client() as client:
        assert chat(client, "drowsy").status_code == 200 and chat(client, "awake").status_code == 200
        monitor = {m: client.get("/backend/monitor", params={"model": m}).json() for m in ("drowsy", "awake")}
        wait_for(lambda: gone(monitor["drowsy"]["pid"]), timeout=10, what="the idle worker to exit")
        assert instance(client, "drowsy")["status"] == "stopped"
        time.sleep(1.0)  # as long again: "awake" has been idle past the global timeout too
        assert instance(client, "awake")["pid"] == monitor["awake"]["pid"]  # its idle_timeout 0: never
        assert not gone(monitor["awake"]["pid"])
