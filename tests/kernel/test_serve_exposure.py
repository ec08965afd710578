"""`kernai serve` beyond loopback, and the names and origins a user allows, against real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer
from kernai.testing.server import free_port

PLUGINS = {"KERNAI_LOAD_PLUGINS": "reference"}
CHAT = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]}


def models(root: Path) -> Path:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    return root / "models"


@pytest.mark.parametrize("how", [["--host", "0.0.0.0"], ["--host", "::"], []])
def test_a_non_loopback_address_without_management_auth_is_refused(tmp_path: Path, how: list[str]) -> None:
    env = {**os.environ, **PLUGINS, **({} if how else {"KERNAI_HOST": "0.0.0.0"})}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernai",
            "serve",
            *how,
            "--port",
            str(free_port()),
            "--models-dir",
            str(models(tmp_path)),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "with management auth off" in result.stderr
    for advice in (
        "require_management_auth: true",
        "KERNAI_REQUIRE_MANAGEMENT_AUTH=true",
        "--insecure-allow-open-management",
    ):
        assert advice in result.stderr


@pytest.mark.parametrize(
    ("flag", "env"),
    [(["--insecure-allow-open-management"], {}), ([], {"KERNAI_INSECURE_ALLOW_OPEN_MANAGEMENT": "true"})],
)
def test_the_flag_accepts_the_risk_and_the_log_names_the_open_routes(
    tmp_path: Path, flag: list[str], env: dict[str, str]
) -> None:
    with (
        KernaiServer(
            models(tmp_path), tmp_path / "data", env={**PLUGINS, **env}, args=["--host", "0.0.0.0", *flag]
        ) as server,
        server.client() as http,
    ):
        log = server.log()
        assert "listening on 0.0.0.0 with no API key needed for: management routes (/api/*, /models/*" in log
        assert "inference routes (/v1/*" in log
        # bound to every address: reached by any of the machine's addresses, or its name; not by others
        for host in (f"192.0.2.7:{server.port}", "[2001:db8::1]", socket.gethostname(), "localhost"):
            assert http.get("/v1/models", headers={"host": host}).status_code == 200, host
        assert http.get("/v1/models", headers={"host": "attacker.example"}).status_code == 400


def test_with_management_auth_on_it_starts_and_logs_the_inference_routes_open(tmp_path: Path) -> None:
    env = {**PLUGINS, "KERNAI_REQUIRE_MANAGEMENT_AUTH": "true"}
    with KernaiServer(models(tmp_path), tmp_path / "data", env=env, args=["--host", "0.0.0.0"]) as server:
        log = server.log()
        assert "created one, shown only now" in log
        assert "with no API key needed for: inference routes" in log and "management routes" not in log
        assert httpx.get(f"{server.url}/api/v1/instances").status_code == 401


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """Names given with --allowed-host, an origin in cors_origins."""
    root = tmp_path_factory.mktemp("named")
    env = {**PLUGINS, "KERNAI_CORS_ORIGINS": '["http://ui.example:3000"]'}
    args = ["--allowed-host", "kernai.lan", "--allowed-host", "*.corp.example"]
    with KernaiServer(models(root), root / "data", env=env, args=args) as server:
        yield server


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("kernai.lan", 200),
        ("KERNAI.lan:443", 200),
        ("gpu.corp.example", 200),
        ("a.b.corp.example:80", 200),
        ("corp.example", 400),
        ("kernai.lan.attacker.example", 400),
        ("192.0.2.7", 400),
        ("localhost", 200),
    ],
)
def test_allowed_host_names_the_server_may_be_reached_by(named: KernaiServer, host: str, status: int) -> None:
    assert httpx.get(f"{named.url}/v1/models", headers={"host": host}).status_code == status


@pytest.mark.parametrize(
    ("host", "origin", "status"),
    [
        ("127.0.0.1:{port}", "http://ui.example:3000", 200),  # in cors_origins
        ("127.0.0.1:{port}", "http://ui.example:3001", 403),
        ("kernai.lan:{port}", "http://kernai.lan:{port}", 200),  # same origin under an allowed name
        ("kernai.lan", "https://kernai.lan", 200),  # behind a TLS proxy: the page is https, kernai sees http
        ("kernai.lan", "https://kernai.lan:8443", 403),
        (
            "kernai.lan:{port}",
            "http://gpu.corp.example:{port}",
            403,
        ),  # another allowed name is another origin
    ],
)
def test_allowed_origins(named: KernaiServer, host: str, origin: str, status: int) -> None:
    headers = {"host": host.format(port=named.port), "origin": origin.format(port=named.port)}
    response = httpx.post(f"{named.url}/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == status, response.text


def test_a_star_allows_any_host_and_any_origin(tmp_path: Path) -> None:
    env = {**PLUGINS, "KERNAI_ALLOWED_HOSTS": '["*"]', "KERNAI_CORS_ORIGINS": '["*"]'}
    with KernaiServer(models(tmp_path), tmp_path / "data", env=env) as server, server.client() as http:
        headers = {"host": "anything.example", "origin": "http://elsewhere.example"}
        assert http.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
