"""The rerank backend honours the plugin contract (kernai's conformance kit)."""

from pathlib import Path
from typing import ClassVar

from kernai.testing import BackendConformance, run_doctor
from kernai_rerank.testing import write_tiny_bert


class TestRerankBackend(BackendConformance):
    backend = "rerank"
    model_config: ClassVar = {"parameters": {"model": "tiny.gguf"}, "threads": 1}

    def prepare_models_dir(self, models_dir: Path) -> None:
        write_tiny_bert(models_dir / "tiny.gguf", cross_encoder=True)


def test_doctor_reranks_with_a_tiny_model_in_a_worker() -> None:
    done, [finding] = run_doctor("rerank")
    assert done.returncode == 0 and finding["outcome"] == "ok", finding
