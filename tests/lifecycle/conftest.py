"""Real `kernai serve` processes with reference-backend models, one per server-wide setting under test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kernai.testing import KernaiServer

MANAGEMENT_KEY = "test-management-key"
CONFIG_INFERENCE_KEY = "test-inference-key"


def make_server(root: Path, models: dict[str, dict[str, Any]], settings: dict[str, Any]) -> KernaiServer:
    """A server over ``root/models`` (one YAML per model) and ``root/data``, with ``settings`` as its config."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name, config in models.items():
        (root / "models" / f"{name}.yaml").write_text(
            yaml.safe_dump({"name": name, "backend": "reference", **config})
        )
    config_file = root / "kernai.yaml"
    config_file.write_text(yaml.safe_dump({"idle_check_interval": 0.2, **settings}))
    return KernaiServer(
        root / "models",
        root / "data",
        env={"KERNAI_LOAD_PLUGINS": "reference"},
        args=["--config", str(config_file)],
    )


def chat(client: httpx.Client, model: str, text: str = "hello there", **headers: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]},
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def instance(client: httpx.Client, name: str, **headers: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/instances/{name}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """At most one running model; a request waits 1.5 s for room; two requests may queue per model."""
    root = tmp_path_factory.mktemp("capped")
    models = {"alpha": {"delay": 0.1}, "beta": {"delay": 0.1}}
    with make_server(root, models, {"max_running_models": 1, "busy_timeout": 1.5, "queue_size": 2}) as server:
        yield server


@pytest.fixture(scope="session")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """No cap: idle unload, crash restarts, on-demand start off, instances, logs."""
    root = tmp_path_factory.mktemp("lifecycle")
    models = {
        "napper": {"idle_timeout": 1.0},
        "phoenix": {"max_restarts": 1, "restart_delay": 0.2},
        "manual": {"on_demand_start": False},
        "echo": {},
    }
    with make_server(root, models, {}) as server:
        yield server


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """Both kinds of API keys required; one management and one inference key in the config."""
    root = tmp_path_factory.mktemp("secured")
    settings = {
        "require_management_auth": True,
        "require_inference_auth": True,
        "management_keys": [MANAGEMENT_KEY],
        "inference_keys": [CONFIG_INFERENCE_KEY],
    }
    with make_server(root, {"open": {}, "other": {}}, settings) as server:
        yield server


@pytest.fixture()
def client(lifecycle: KernaiServer) -> Iterator[httpx.Client]:
    with lifecycle.client() as http:
        yield http
