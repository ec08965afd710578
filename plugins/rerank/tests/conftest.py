"""One kernai server for the session, serving tiny random BERTs and all-MiniLM-L6-v2 converted to GGUF."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kernai.testing import KernaiServer
from kernai_rerank.testing import minilm_folder, write_tiny_bert


@pytest.fixture(scope="session")
def minilm_dir(pytestconfig: pytest.Config) -> Path:
    return minilm_folder(Path(pytestconfig.cache.mkdir("kernai-wheels")))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    models = tmp_path_factory.mktemp("models")
    write_tiny_bert(models / "tiny-cross-encoder.gguf", cross_encoder=True)
    write_tiny_bert(models / "tiny-embedder.gguf", cross_encoder=False)
    # the command line users run to convert a sentence-transformers model
    subprocess.run(
        [sys.executable, "-m", "kernai_rerank.convert", str(minilm_dir), str(models / "minilm.gguf")],
        check=True,
        capture_output=True,
    )
    configs = {
        "tiny-cross-encoder": {
            "backend": "rerank",
            "parameters": {"model": "tiny-cross-encoder.gguf"},
            "threads": 1,
        },
        "tiny-embedder": {"backend": "rerank", "parameters": {"model": "tiny-embedder.gguf"}, "threads": 1},
        "minilm-rerank": {"backend": "rerank", "parameters": {"model": "minilm.gguf"}, "threads": 2},
        "minilm-embed": {
            "backend": "llama-cpp",
            "parameters": {"model": "minilm.gguf"},
            "embeddings": True,
            "threads": 2,
        },
    }
    for name, config in configs.items():
        (models / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **config}))
    return models


@pytest.fixture(scope="session")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    with KernaiServer(models_dir, tmp_path_factory.mktemp("data")) as running:
        yield running
