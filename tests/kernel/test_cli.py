"""The `kernai` command line, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

import kernai
from kernai.testing import KernaiServer
from kernai.testing.server import free_port


def kernai_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernai", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_version() -> None:
    result = kernai_cli("--version")
    assert result.returncode == 0 and kernai.__version__ in result.stdout


def test_plugins_lists_the_reference_backend_with_its_hooks() -> None:
    result = kernai_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    reference = plugins["reference"]
    assert reference["distribution"] == "kernai-reference" and reference["backends"] == ["reference"]
    assert {"register_backends", "load", "predict", "status", "shutdown"} <= set(reference["hooks"])
    table = kernai_cli("plugins")
    assert "reference" in table.stdout


def test_load_plugins_env_limits_which_plugins_load() -> None:
    result = kernai_cli("plugins", "--json", env={"KERNAI_LOAD_PLUGINS": ""})
    assert json.loads(result.stdout)["plugins"] == []


def test_serve_takes_settings_from_a_config_file_and_env(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "kernai.yaml"
    config.write_text(f"port: {port}\nresponse_headers:\n  X-Served-By: kernai-test\n")
    models = tmp_path / "models"
    models.mkdir()
    (models / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    env = {"KERNAI_CONFIG": str(config), "KERNAI_MODELS_DIR": str(models), "KERNAI_DATA_DIR": str(tmp_path / "d")}
    process = subprocess.Popen([sys.executable, "-m", "kernai", "serve"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline_ok = False
        for _ in range(300):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                deadline_ok = True
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert deadline_ok, "server did not start"
        assert response.headers["x-served-by"] == "kernai-test"
        assert [m["id"] for m in response.json()["data"]] == ["echo"]
        listening = {c.laddr.ip for c in psutil.net_connections("tcp")
                     if c.laddr.port == port and c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}  # no --host given: localhost only
    finally:
        process.terminate()
        process.wait(20)


def test_serve_refuses_a_bad_config_file_clearly(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: not-a-number\n")
    result = kernai_cli("serve", "--config", str(config))
    assert result.returncode != 0
    assert "port" in (result.stderr + result.stdout)


def test_serve_refuses_a_port_another_server_listens_on(server: KernaiServer) -> None:
    result = kernai_cli("serve", "--port", str(server.port), "--models-dir", str(server.models_dir))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
