"""The ``ultralytics`` backend: object detection (and instance segmentation) with ultralytics YOLO and
FastSAM.

Serves ``.pt`` checkpoints and exported ``.onnx`` models; boxes come back in pixels of the original
image, segmentation models add a PNG mask per detection, FastSAM models also take points and boxes.
ultralytics never reaches the network here (``YOLO_OFFLINE``, no auto-install).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kernai import Backend, BackendOption, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap

NAME = "ultralytics"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Object detection and segmentation with ultralytics YOLO (.pt or .onnx).",
            capabilities=[cap.Capability.DETECTION],
            options=[
                BackendOption(
                    name="task",
                    type="str",
                    choices=["detect", "segment", "pose", "obb"],
                    description="The task of an .onnx file that does not carry it (ultralytics exports "
                    "and .pt checkpoints do; else ultralytics guesses from the file name, "
                    "then 'detect').",
                ),
                BackendOption(
                    name="kind",
                    type="str",
                    choices=["yolo", "fastsam"],
                    description="'fastsam': a FastSAM model, which takes points and boxes (default: "
                    "fastsam when the file name contains 'fastsam', else yolo).",
                ),
                BackendOption(
                    name="image_size",
                    type="int",
                    default=640,
                    minimum=32,
                    maximum=8192,
                    description="Inference size in pixels.",
                ),
                BackendOption(
                    name="confidence",
                    type="float",
                    default=0.25,
                    minimum=0,
                    maximum=1,
                    description="Minimum confidence; a request's 'threshold' overrides it.",
                ),
                BackendOption(
                    name="iou",
                    type="float",
                    default=0.7,
                    minimum=0,
                    maximum=1,
                    description="IoU threshold of non-maximum suppression.",
                ),
                BackendOption(
                    name="max_detections",
                    type="int",
                    default=300,
                    minimum=1,
                    maximum=10000,
                    description="Most detections per image.",
                ),
                BackendOption(
                    name="classes", type="list", description="Only these class ids (default: all)."
                ),
                BackendOption(
                    name="max_pixels",
                    type="int",
                    default=40_000_000,
                    minimum=1,
                    description="Largest image accepted, in pixels (width x height); larger ones get a 400.",
                ),
            ],
            selftest=f"{__name__}:selftest",
        )
    )


SELFTEST_MODEL = "yolo11n-random.pt"
_BUILD = (
    "import sys; from kernai_ultralytics.testing import write_random_yolo; write_random_yolo(sys.argv[1])"
)


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: ``yolo11n.yaml`` with seeded random weights (no trained YOLO ships with
    ultralytics or can be fetched offline) saved as a ``.pt``, and ultralytics' own ``bus.jpg``.

    The checkpoint is built in a child process: torch never loads into the doctor, so an engine
    built for instructions this CPU lacks cannot take the doctor down while the model is made.
    """
    from kernai_ultralytics.testing import sample_image

    built = subprocess.run(
        [sys.executable, "-c", _BUILD, str(folder / SELFTEST_MODEL)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode < 0:
        try:
            died = signal.Signals(-built.returncode).name
        except ValueError:
            died = f"signal {-built.returncode}"
        cause = (
            " (it uses CPU instructions this machine cannot run: reinstall torch for this CPU)"
            if built.returncode == -signal.SIGILL
            else ""
        )
        raise RuntimeError(f"torch died with {died} building a random-weight {SELFTEST_MODEL}{cause}")
    if built.returncode:
        error = built.stderr.strip()[-2000:]
        raise RuntimeError(f"building a random-weight {SELFTEST_MODEL} failed: {error}")
    # a low threshold: random weights score boxes at about 0.07 to 0.2, so the answer has some
    return SelfTest(
        config={"parameters": {"model": SELFTEST_MODEL}, "image_size": 320},
        request=cap.DetectionRequest(image=sample_image("bus.jpg").read_bytes(), threshold=0.05),
    )


load, predict, status, shutdown = model_hooks("kernai_ultralytics.detector:Detector")
