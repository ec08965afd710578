"""The llama-cpp backend passes the kernel's conformance kit, on the tiny generated GGUF."""

from pathlib import Path

from kernai.testing import BackendConformance
from kernai_llama_cpp.testing import shared_tiny_llama


class TestLlamaCppBackend(BackendConformance):
    backend = "llama-cpp"
    model_config = {"parameters": {"model": "tiny.gguf"}, "context_size": 1024}

    def prepare_models_dir(self, models_dir: Path) -> None:
        (models_dir / "tiny.gguf").symlink_to(shared_tiny_llama())
