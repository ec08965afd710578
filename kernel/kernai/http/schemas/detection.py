"""Detection wire formats (LocalAI's ``/v1/detection``), plus ultralytics-style overrides."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kernai.http.schemas import NonNegativeInt

ModelName = Annotated[str, Meta(min_length=1)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
Point = Annotated[
    list[float],
    Meta(
        min_length=2,
        max_length=3,
        description="[x, y] or [x, y, label]: label 1 "
        "(the default) is on the object, 0 is not; pixels of the original image",
    ),
]
Box = Annotated[
    list[float], Meta(min_length=4, max_length=4, description="[x1, y1, x2, y2]: corners in pixels")
]


class DetectionRequestWire(Struct, kw_only=True, omit_defaults=True):
    """``image`` is an http(s) URL, a data URI or bare base64. ``points`` and ``boxes`` prompt models that
    take them (FastSAM); the other optional fields override the model config."""

    model: ModelName
    image: str
    threshold: Fraction | None = None
    prompt: str | None = None
    points: list[Point] | None = None
    boxes: list[Box] | None = None
    image_size: Annotated[int, Meta(ge=32, le=8192)] | None = None
    iou: Fraction | None = None
    max_detections: Annotated[int, Meta(ge=1, le=10000)] | None = None
    classes: list[NonNegativeInt] | None = None


class DetectionWire(Struct, kw_only=True, omit_defaults=True):
    """A box in pixels of the original image: top-left corner, width, height. ``mask``: base64 PNG."""

    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str
    mask: bytes | None = None


class DetectionResponse(Struct):
    detections: list[DetectionWire]
