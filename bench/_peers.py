"""Peer servers the benchmarks start beside kernai: ``python -m llama_cpp.server`` on a model, or any
command that serves an OpenAI-style API, each on a free local port and waited for until it answers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from kernai.testing.server import free_port


def start_serving(command: list[str], base: str, name: str, timeout: float = 120) -> subprocess.Popen[bytes]:
    """Run ``command`` (its output discarded) until ``BASE/v1/models`` answers 200; after ``timeout``
    seconds without an answer it is killed and a ``RuntimeError`` says that ``name`` did not start."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{name} did not start")


def start_llama_cpp_server(
    model: Path, threads: int, context: int, *options: str, timeout: float = 120
) -> tuple[subprocess.Popen[bytes], str]:
    """llama-cpp-python's own server on ``model`` (named ``gemma``) with ``threads`` threads, a
    ``context``-token context and the extra command-line ``options``: its process and base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        "gemma",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--n_ctx",
        str(context),
        "--verbose",
        "False",
        *options,
    ]
    return start_serving(command, base, "python -m llama_cpp.server", timeout), base
