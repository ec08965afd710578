"""The ultralytics backend honours the plugin contract (kernai's conformance kit)."""

from pathlib import Path
from typing import ClassVar

import pytest

from kernai import capabilities as cap
from kernai.testing import BackendConformance
from kernai_ultralytics.testing import sample_image, write_random_yolo

pytestmark = pytest.mark.slow  # a YOLO model on torch

BUS = sample_image("bus.jpg").read_bytes()


class TestUltralyticsBackend(BackendConformance):
    backend = "ultralytics"
    model_config: ClassVar = {"parameters": {"model": "random.pt"}, "threads": 2}
    requests: ClassVar = {cap.Capability.DETECTION: cap.DetectionRequest(image=BUS, threshold=0.05)}

    def prepare_models_dir(self, models_dir: Path) -> None:
        write_random_yolo(models_dir / "random.pt")
