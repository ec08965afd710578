"""The `kernai` command line, run as users run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
import psutil
import pytest

import kernai
from kernai.testing import KernaiServer
from kernai.testing.server import free_port

REFERENCE_HOOKS = ["load", "predict", "register_backends", "shutdown", "status"]


def kernai_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernai", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``kernai serve`` with ``args`` and ``env`` (and an ``echo`` model); stopped with Ctrl-C on exit."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernai",
            "serve",
            "--models-dir",
            str(models),
            "--data-dir",
            str(tmp_path / "d"),
            *args,
        ],
        env={**os.environ, "KERNAI_LOAD_PLUGINS": "reference", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def get_when_up(process: subprocess.Popen[bytes], url: str, timeout: float = 60) -> httpx.Response:
    """GET ``url`` as soon as the server answers it (it takes a moment to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered {url}")


def listening(port: int) -> set[str]:
    """The addresses on which something listens on ``port``."""
    return {
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.laddr.port == port and c.status == psutil.CONN_LISTEN
    }


def table_rows(text: str) -> list[list[list[str]]]:
    """The rows of a rich table printed with ``show_lines``: per cell, its lines."""
    rows: list[list[list[str]]] = []
    for line in text.splitlines():
        if line.startswith(("┡", "├")):
            rows.append([])
        elif line.startswith("│") and rows:
            cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
            if not rows[-1]:
                rows[-1] = [[] for _ in cells]
            for lines, cell in zip(rows[-1], cells, strict=True):
                if cell:
                    lines.append(cell)
    return rows


def test_version() -> None:
    result = kernai_cli("--version")
    assert result.returncode == 0 and kernai.__version__ in result.stdout


def test_plugins_lists_the_reference_backend_with_its_version_and_hooks() -> None:
    result = kernai_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    reference = plugins["reference"]
    assert reference["distribution"] == "kernai-reference" and reference["backends"] == ["reference"]
    assert reference["version"] == version("kernai-reference")
    assert reference["hooks"] == REFERENCE_HOOKS


def test_plugins_table_shows_versions_and_every_hook_whole_in_80_columns() -> None:
    table = kernai_cli("plugins", env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    assert max(map(len, table.stdout.splitlines())) <= 80
    rows = {row[0][0]: row for row in table_rows(table.stdout)}
    assert rows["reference"][1:] == [
        ["kernai-reference"],
        [version("kernai-reference")],
        ["reference"],
        REFERENCE_HOOKS,
    ], table.stdout


def test_load_plugins_env_limits_which_plugins_load() -> None:
    result = kernai_cli("plugins", "--json", env={"KERNAI_LOAD_PLUGINS": ""})
    assert json.loads(result.stdout)["plugins"] == []


def test_serve_takes_settings_from_a_config_file_and_env(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "kernai.yaml"
    config.write_text(f"port: {port}\nresponse_headers:\n  X-Served-By: kernai-test\n")
    with serving(tmp_path, env={"KERNAI_CONFIG": str(config)}) as process:
        response = get_when_up(process, f"http://127.0.0.1:{port}/v1/models")
        assert response.headers["x-served-by"] == "kernai-test"
        assert [m["id"] for m in response.json()["data"]] == ["echo"]
        assert listening(port) == {"127.0.0.1"}  # no host given: localhost only


def test_serve_binds_the_host_and_port_of_the_env_vars(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, env={"KERNAI_HOST": "127.0.0.2", "KERNAI_PORT": str(port)}) as process:
        assert get_when_up(process, f"http://127.0.0.2:{port}/healthz").json() == {"status": "ok"}
        assert listening(port) == {"127.0.0.2"}


def test_serve_flags_win_over_the_env_vars(tmp_path: Path) -> None:
    env_port, flag_port = free_port(), free_port()
    env = {"KERNAI_HOST": "127.0.0.2", "KERNAI_PORT": str(env_port)}
    with serving(tmp_path, "--host", "127.0.0.3", "--port", str(flag_port), env=env) as process:
        assert get_when_up(process, f"http://127.0.0.3:{flag_port}/healthz").json() == {"status": "ok"}
        assert listening(flag_port) == {"127.0.0.3"}
        assert listening(env_port) == set()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: not-a-number\n", "port: Expected `int`, got `str`"),
        ("port: [8080\n", "not valid YAML"),
    ],
)
def test_serve_refuses_a_bad_config_file_naming_it(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "kernai.yaml"
    config.write_text(text)
    result = kernai_cli("serve", "--config", str(config))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{config}: {message}" in result.stderr


def test_serve_refuses_a_bad_log_level_naming_where_it_was_set(tmp_path: Path) -> None:
    config = tmp_path / "kernai.yaml"
    config.write_text("log_level: loud\n")
    from_file = kernai_cli("serve", "--config", str(config))
    from_env = kernai_cli("serve", env={"KERNAI_LOG_LEVEL": "loud"})
    for result, origin in ((from_file, str(config)), (from_env, "KERNAI_LOG_LEVEL")):
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert (
            f"{origin}: log_level: Invalid enum value 'loud' (one of: debug, info, warning, error)"
            in result.stderr
        )


def test_serve_refuses_a_port_another_server_listens_on(server: KernaiServer) -> None:
    result = kernai_cli("serve", "--port", str(server.port), "--models-dir", str(server.models_dir))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
