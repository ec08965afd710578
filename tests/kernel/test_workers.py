"""One worker process per model: crash isolation, restart on the next request, cancellation, monitor."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil

LONG = " ".join(f"w{i}" for i in range(60))


def chat(client: httpx.Client, model: str, text: str, **extra: object) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra},
    )


def worker_pid(client: httpx.Client, model: str) -> int:
    facts = client.get("/backend/monitor", params={"model": model}).json()
    return facts["pid"]


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def kill_mid_request_with(client: httpx.Client, model: str, signum: int) -> tuple[int, httpx.Response]:
    """Kill the model's worker with ``signum`` while it answers a long chat; its PID and the chat's
    response."""
    assert chat(client, model, "warm up").status_code == 200
    pid = worker_pid(client, model)
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.update(r=chat(client, model, LONG)))
    thread.start()
    wait_for(lambda: client.get("/backend/monitor", params={"model": model}).json()["state"] == "busy")
    os.kill(pid, signum)
    thread.join(30)
    return pid, result["r"]


def kill_mid_request(client: httpx.Client, model: str) -> tuple[int, httpx.Response]:
    return kill_mid_request_with(client, model, signal.SIGKILL)


def test_sigkill_mid_request_gives_503_and_the_next_request_restarts(client: httpx.Client) -> None:
    pid, crashed = kill_mid_request(client, "slow")
    assert crashed.status_code == 503, crashed.text
    assert crashed.json()["error"]["message"]
    assert client.get("/healthz").status_code == 200
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert models["slow"]["status"]["state"] in {"uninitialized", "error"}
    again = chat(client, "slow", "alive again")
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"] == "alive again"
    assert worker_pid(client, "slow") != pid


def test_without_auto_restart_a_crashed_model_stays_failed_until_started(client: httpx.Client) -> None:
    pid, crashed = kill_mid_request(client, "no-restart")
    assert crashed.status_code == 503 and crashed.json()["error"]["code"] == "worker_crashed"
    refused = chat(client, "no-restart", "refused")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_failed"
    assert client.post("/api/v1/instances/no-restart/start").status_code == 200
    again = chat(client, "no-restart", "started again")
    assert again.status_code == 200
    assert again.json()["choices"][0]["message"]["content"] == "started again"
    assert worker_pid(client, "no-restart") != pid


def test_sigkill_mid_stream_ends_the_stream_with_an_error_event(client: httpx.Client) -> None:
    chat(client, "slow", "warm")
    pid = worker_pid(client, "slow")
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "slow",
            "stream": True,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": LONG}],
        },
    ) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        os.kill(pid, signal.SIGKILL)
        rest = [line for line in lines if line.startswith("data: ")]
    assert any('"error"' in line for line in rest), rest
    assert chat(client, "slow", "fine").status_code == 200


def test_closing_a_stream_stops_generation_in_the_worker(client: httpx.Client) -> None:
    chat(client, "slow", "warm")
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "slow",
            "stream": True,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": LONG}],
        },
    ) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(line for line in lines if line.startswith("data: "))
    status = lambda: client.get("/backend/monitor", params={"model": "slow"}).json()  # noqa: E731
    wait_for(lambda: status()["state"] == "ready")
    time.sleep(0.5)  # the token being generated when the cancel arrived may still finish
    generated = status()["status"]["tokens_generated"]
    time.sleep(1.0)  # five more tokens' worth of time at 0.2 s each
    assert status()["status"]["tokens_generated"] == generated
    assert generated < 20  # warm-up, the three tokens read, and at most a couple in flight


def test_monitor_reports_memory_and_shutdown_stops_the_worker(client: httpx.Client) -> None:
    chat(client, "echo", "hello")
    facts = client.get("/backend/monitor", params={"model": "echo"}).json()
    assert facts["state"] == "ready" and facts["backend"] == "reference"
    assert facts["memory_info"]["rss"] > 1_000_000
    assert psutil.pid_exists(facts["pid"])
    body_form = client.request("GET", "/v1/backend/monitor", json={"model": "echo"}).json()
    assert body_form["pid"] == facts["pid"]
    assert client.post("/backend/shutdown", json={"model": "echo"}).status_code == 200
    wait_for(lambda: not psutil.pid_exists(facts["pid"]) or psutil.Process(facts["pid"]).status() == "zombie")
    assert client.get("/backend/monitor", params={"model": "echo"}).json()["state"] == "uninitialized"
    assert chat(client, "echo", "back").status_code == 200

    again = client.get("/v1/backend/monitor", params={"model": "echo"}).json()
    assert again["state"] == "ready" and again["pid"] != facts["pid"]
    assert client.post("/v1/backend/shutdown", json={"model": "echo"}).status_code == 200
    wait_for(lambda: not psutil.pid_exists(again["pid"]) or psutil.Process(again["pid"]).status() == "zombie")
    assert client.get("/v1/backend/monitor", params={"model": "echo"}).json()["state"] == "uninitialized"


def test_a_backend_that_fails_to_load_is_a_503_and_an_error_state(client: httpx.Client) -> None:
    response = chat(client, "broken-load", "x")
    assert response.status_code == 503
    assert "fail_load is set" in response.json()["error"]["message"]
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert models["broken-load"]["status"]["state"] == "error"
    assert "fail_load is set" in models["broken-load"]["status"]["error"]
    assert chat(client, "echo", "others still serve").status_code == 200


def test_a_worker_killed_by_sigill_fails_its_model_with_the_cause_and_the_fix(client: httpx.Client) -> None:
    pid, crashed = kill_mid_request_with(client, "sigill", signal.SIGILL)
    assert crashed.status_code == 503, crashed.text
    error = crashed.json()["error"]
    assert error["code"] == "illegal_instruction"
    assert "CPU instructions this machine cannot run" in error["message"]
    assert "kernai backends install reference" in error["message"] and "kernai doctor" in error["message"]
    # no restart loop: the model stays in error, and says why, until it is started again
    refused = chat(client, "sigill", "refused")
    assert refused.status_code == 503 and refused.json()["error"] == error
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert models["sigill"]["status"] == {"state": "error", "error": error["message"]}
    monitor = client.get("/backend/monitor", params={"model": "sigill"}).json()
    assert monitor["state"] == "error" and monitor["instance_status"] == "failed"
    assert monitor["error"] == error["message"] and monitor["restarts"] == 0 and "pid" not in monitor
    assert client.post("/api/v1/instances/sigill/start").status_code == 200
    again = chat(client, "sigill", "started again")
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"] == "started again"
    assert worker_pid(client, "sigill") != pid
