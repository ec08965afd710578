"""A property-based fuzzer (schemathesis) sends valid and invalid requests to every operation of the served
OpenAPI document, for a bounded time, and fails on a server error: a client's mistake must be a 4xx.

The server has default settings but for its galleries, which are empty. The backend routes
(``/backends/apply``, ``/backends/upgrade/{name}``, ``/backends/delete/{name}``) are fuzzed too: a backend
installs into an environment of its own, and the plugins of the environment the tests run in are development
installs the gallery refuses to touch (409), which the last assertion checks. ``PUT /api/v1/auth/settings``
is left out, or the fuzzer locks itself out (401) after its first management key. A 503 is allowed: it is
kernai's answer for a model that cannot serve now, which the fuzzer causes itself (a model it stopped in
the middle of another request, disabled, or configured with a file that does not exist), and so is
llama-server's 501 for ``POST /props``. ``KERNAI_FUZZ_SECONDS`` sets the time (default 75).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

from kernai.testing import prepare_server
from kernai_llama_cpp.testing import shared_tiny_llama

pytestmark = pytest.mark.slow

SECONDS = int(os.environ.get("KERNAI_FUZZ_SECONDS", "75"))
LEFT_OUT = r"^/api/v1/auth/settings$"
CONFIG = """\
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

# llama-server's answer, which its native surface keeps: "This server does not support changing global
# properties. Start it with `--props`"
[[operations]]
include-path-regex = "/props$"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "501", "503"]
"""
TINY = "name: tiny\nbackend: llama-cpp\ncontext_size: 256\nparameters:\n  model: tiny.gguf\n"


def installed() -> list[tuple[str, str]]:
    return sorted((dist.metadata["Name"], dist.version) for dist in distributions())


def test_no_request_gets_a_server_error(tmp_path: Path) -> None:
    before = installed()
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    settings: dict[str, list[str]] = {"galleries": [], "backend_galleries": []}
    models = {
        "echo.yaml": "name: echo\nbackend: reference\n",
        "tiny.gguf": shared_tiny_llama(),
        "tiny.yaml": TINY,
    }
    with prepare_server(tmp_path, models, settings=settings, plugins="reference,llama-cpp") as server:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "--no-color",
                "run",
                f"{server.url}/docs/openapi.json",
                "--checks",
                "not_a_server_error",
                "--exclude-path-regex",
                LEFT_OUT,
                "--max-time",
                str(SECONDS),
                "--workers",  # one: in threads, schemathesis once failed with a FlakyFailure of its own
                "1",
                "--generation-database",
                "none",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=SECONDS + 120,
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "fuzz_hooks",
                "KERNAI_FUZZ_MODELS": "echo,tiny",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
                ),
            },
        )
        alive = server.running
        log = server.log()
    generated = re.search(r"(\d+) generated", run.stdout)
    failures = run.stdout.partition("= FAILURES =")[2].partition("= WARNINGS =")[0]
    assert run.returncode == 0 and generated, (
        f"{failures[:20000] or run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    )
    assert int(generated[1]) > 1000, run.stdout[-3000:]  # it did reach the server
    assert alive and "Internal server error" not in log and "unhandled error" not in log, log[-5000:]
    assert installed() == before  # nothing was installed into, or removed from, this environment
