"""A plugin from outside the kernel adds a surface: a management route with an error body of its own, and a
command. The plugin is the one ``docs/writing-a-surface.md`` shows, installed into a real server as pip
would (a module and its ``*.dist-info`` with the entry point, on the server's ``PYTHONPATH``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer, ServerFactory, install_plugin, on_pythonpath

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-surface.md"
ADMIN, INFERENCE = "sk-status-admin", "sk-status-inference"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that, on PYTHONPATH, installs the guide's ``kernai_status`` plugin."""
    code = re.search(r"## A surface in one module\n.*?```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert code is not None, f"{GUIDE.name} has no plugin code block"
    return install_plugin(tmp_path_factory.mktemp("status-plugin"), "status", code.group(1))


def with_path(folder: Path) -> dict[str, str]:
    return {"PYTHONPATH": on_pythonpath(folder)}


@pytest.fixture(scope="module")
def server(kernai_server: ServerFactory, plugin_path: Path) -> KernaiServer:
    return kernai_server(
        {"echo.yaml": "name: echo\nbackend: reference\n"},
        name="third-party-surface",
        settings={
            "require_management_auth": True,
            "management_keys": [ADMIN],
            "inference_keys": [INFERENCE],
            "rate_limit": False,
        },
        plugins="reference,status",
        env=with_path(plugin_path),
    )


def test_its_route_takes_its_class_key_and_answers_errors_in_its_own_body(server: KernaiServer) -> None:
    with server.client() as http:
        missing = http.get("/status/models")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json() == {
            "problem": "Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'",
            "status": 401,
        }
        wrong_kind = http.get("/status/models", headers={"Authorization": f"Bearer {INFERENCE}"})
        assert wrong_kind.json() == {"problem": "This route needs a management key", "status": 403}
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert http.get("/status/models", headers=admin).json() == {"echo": "stopped"}
        unknown = http.get("/status/models/nope", headers=admin)
        assert unknown.status_code == 404
        assert unknown.json() == {"problem": "The model 'nope' does not exist", "status": 404}
        # the rest of the server is as it was: its routes keep their own classes and bodies
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {INFERENCE}"}).status_code == 200
        assert http.get("/api/v1/instances").json()["error"].startswith("Missing API key")


def test_its_route_is_in_the_openapi_document(server: KernaiServer) -> None:
    paths = httpx.get(f"{server.url}/docs/openapi.json").json()["paths"]
    assert {"/status/models", "/status/models/{name}"} <= set(paths)
    assert "/v1/chat/completions" in paths


def test_its_command_joins_the_kernai_command_line(server: KernaiServer, plugin_path: Path) -> None:
    env = {**os.environ, **with_path(plugin_path), "KERNAI_LOAD_PLUGINS": "reference,status"}
    command = [sys.executable, "-m", "kernai", "status", "--url", server.url, "--key", ADMIN]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: stopped\n"
