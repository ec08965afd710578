"""Real `kernai serve` processes with reference-backend models, one per server-wide setting under test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from kernai.testing import KernaiServer, ServerFactory, free_port, model_configs, prepare_server

MANAGEMENT_KEY = "test-management-key"
CONFIG_INFERENCE_KEY = "test-inference-key"


def lifecycle_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the idle watchdog looking every 0.2 s (the tests wait for it)."""
    return {"idle_check_interval": 0.2, **settings}


def make_server(root: Path, models: dict[str, dict[str, Any]], settings: dict[str, Any]) -> KernaiServer:
    """A server of a test's own over ``root/models`` (one YAML per model) and ``root/data``, with
    ``settings`` as its config."""
    return prepare_server(
        root,
        model_configs(models, backend="reference"),
        settings=lifecycle_settings(settings),
        plugins="reference",
    )


def shared_server(
    kernai_server: ServerFactory,
    name: str,
    models: dict[str, dict[str, Any]],
    settings: dict[str, Any],
    **options: Any,
) -> KernaiServer:
    """The session's server called ``name``, over reference-backend ``models`` with ``settings``;
    ``options`` go to the factory as they are."""
    return kernai_server(
        model_configs(models, backend="reference"),
        name=name,
        settings=lifecycle_settings(settings),
        plugins="reference",
        **options,
    )


class GranianServer(KernaiServer):
    """The ASGI app ``kernai.http.asgi:app`` under granian, as someone embedding kernai runs it: the
    settings come from ``KERNAI_*`` alone, so ``KERNAI_PORT`` need not be the port it listens on."""

    def start(self) -> GranianServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "kernai.http.asgi:app",
        ]
        env = {
            **os.environ,
            **self.env,
            "KERNAI_MODELS_DIR": str(self.models_dir),
            "KERNAI_DATA_DIR": str(self.data_dir),
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=self.startup_timeout, what=f"granian to serve kernai:\n{self.log()}")
        return self


def chat(client: httpx.Client, model: str, text: str = "hello there", **headers: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]},
    )


def gone(pid: int) -> bool:
    """Whether the process ``pid`` has ended (a zombie has)."""
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


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
def capped(kernai_server: ServerFactory) -> KernaiServer:
    """At most one running model; a request waits 1.5 s for room; two requests may queue per model."""
    models = {"alpha": {"delay": 0.1}, "beta": {"delay": 0.1}}
    settings = {"max_running_models": 1, "busy_timeout": 1.5, "queue_size": 2}
    return shared_server(kernai_server, "capped", models, settings)


@pytest.fixture(scope="session")
def lifecycle(kernai_server: ServerFactory) -> KernaiServer:
    """No cap: idle unload, crash restarts, on-demand start off, instances, logs."""
    models = {
        "napper": {"idle_timeout": 1.0},
        "phoenix": {"max_restarts": 1, "restart_delay": 0.2},
        "manual": {"on_demand_start": False},
        "echo": {},
    }
    return shared_server(kernai_server, "lifecycle", models, {})


@pytest.fixture(scope="session")
def secured(kernai_server: ServerFactory) -> KernaiServer:
    """Both kinds of API keys required; one management and one inference key in the config."""
    settings = {
        "require_management_auth": True,
        "require_inference_auth": True,
        "management_keys": [MANAGEMENT_KEY],
        "inference_keys": [CONFIG_INFERENCE_KEY],
    }
    return shared_server(kernai_server, "secured", {"open": {}, "other": {}}, settings)


@pytest.fixture(scope="session")
def idler(kernai_server: ServerFactory) -> KernaiServer:
    """A server-wide idle_timeout of 1 s; one model keeps its own idle_timeout of 0 (never)."""
    models = {"drowsy": {}, "awake": {"idle_timeout": 0}}
    return shared_server(kernai_server, "idler", models, {"idle_timeout": 1.0})


@pytest.fixture(scope="session")
def embedded(kernai_server: ServerFactory) -> KernaiServer:
    """Granian serving the ASGI app on its own port while ``settings.port`` names another (where
    nothing listens); inference keys required, management routes open."""
    settings = {"require_inference_auth": True, "inference_keys": [CONFIG_INFERENCE_KEY]}
    env = {"KERNAI_PORT": str(free_port())}
    return shared_server(
        kernai_server, "embedded", {"alpha": {}, "beta": {}}, settings, env=env, server_class=GranianServer
    )


@pytest.fixture()
def client(lifecycle: KernaiServer) -> Iterator[httpx.Client]:
    with lifecycle.client() as http:
        yield http
