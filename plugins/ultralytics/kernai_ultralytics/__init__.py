"""The ``ultralytics`` backend: object detection (and instance segmentation) with ultralytics YOLO and FastSAM.

Serves ``.pt`` checkpoints and exported ``.onnx`` models; boxes come back in pixels of the original
image, segmentation models add a PNG mask per detection, FastSAM models also take points and boxes.
ultralytics never reaches the network here (``YOLO_OFFLINE``, no auto-install).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernai import Backend, BackendOption, hookimpl
from kernai import capabilities as cap
from kernai.config import ModelConfig

NAME = "ultralytics"


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Object detection and segmentation with ultralytics YOLO (.pt or .onnx).",
            capabilities=[cap.Capability.DETECTION],
            options=[
                BackendOption(name="task", type="str", choices=["detect", "segment", "pose", "obb"],
                              description="The task of an .onnx file that does not carry it (ultralytics exports "
                                          "and .pt checkpoints do; else ultralytics guesses from the file name, "
                                          "then 'detect')."),
                BackendOption(name="kind", type="str", choices=["yolo", "fastsam"],
                              description="'fastsam': a FastSAM model, which takes points and boxes (default: "
                                          "fastsam when the file name contains 'fastsam', else yolo)."),
                BackendOption(name="image_size", type="int", default=640, description="Inference size in pixels."),
                BackendOption(name="confidence", type="float", default=0.25,
                              description="Minimum confidence; a request's 'threshold' overrides it."),
                BackendOption(name="iou", type="float", default=0.7, description="IoU threshold of non-maximum suppression."),
                BackendOption(name="max_detections", type="int", default=300, description="Most detections per image."),
                BackendOption(name="classes", type="list", description="Only these class ids (default: all)."),
                BackendOption(name="max_pixels", type="int", default=40_000_000,
                              description="Largest image accepted, in pixels (width x height); larger ones get a 400."),
            ],
        )
    )


@hookimpl
def load(backend: str, config: ModelConfig) -> Any:
    from kernai_ultralytics.detector import Detector

    return Detector(config)


@hookimpl
def predict(backend: str, model: Any, request: cap.Request) -> Any:
    if isinstance(request, cap.DetectionRequest):
        return model.detect(request)
    return None


@hookimpl
def status(backend: str, model: Any) -> dict[str, Any]:
    return {"kind": model.kind, "task": model.task, "classes": len(model.model.names), "images_served": model.served}


@hookimpl
def shutdown(backend: str, model: Any) -> bool:
    return True
