"""An ultralytics model (``.pt`` or exported ``.onnx``) behind the detection capability."""

from __future__ import annotations

import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest, NotSupported
from kernai_ultralytics.images import decode_image

BOX_TASKS = ("detect", "segment", "pose", "obb")
TEXT_PROMPTS = (
    "No model here takes a text prompt: YOLO-World, YOLOE and FastSAM read one with a CLIP text encoder "
    "that ultralytics installs and downloads at run time (the 'clip' package from GitHub, then its "
    "weights). FastSAM models (kind: fastsam) take points and boxes"
)


def offline_environment() -> None:
    """Keep ultralytics off the network: no hub, no auto-installs, settings in a writable folder.

    Must run before ``import ultralytics``, which reads these once.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "kernai-ultralytics"))
    os.environ.setdefault("YOLO_VERBOSE", "0")


class Detector(Model):
    """One model; requests are served one at a time (ultralytics predictors keep state)."""

    def __init__(self, config: ModelConfig) -> None:
        offline_environment()
        import torch
        from ultralytics import YOLO, FastSAM

        if config.threads:
            torch.set_num_threads(config.threads)
        self.options = config.options
        assert config.model_path is not None
        self.kind: str = self.options.get("kind") or (
            "fastsam" if "fastsam" in Path(config.model_path).stem.lower() else "yolo"
        )
        try:
            self.model = (
                FastSAM(config.model_path)
                if self.kind == "fastsam"
                else YOLO(config.model_path, task=self.options.get("task"))
            )
        except (FileNotFoundError, ValueError, TypeError, RuntimeError) as exc:
            raise InvalidRequest(f"{config.model_path} is not an ultralytics model: {exc}") from None
        if self.model.task not in BOX_TASKS:
            raise InvalidRequest(
                f"task '{self.model.task}' gives no boxes; detection needs one of {', '.join(BOX_TASKS)}"
            )
        self.lock = threading.Lock()
        self.served = 0

    @property
    def task(self) -> str:
        return str(self.model.task)

    def predict(self, request: cap.Request) -> cap.Result | None:
        return self.detect(request) if isinstance(request, cap.DetectionRequest) else None

    def status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "task": self.task,
            "classes": len(self.model.names),
            "images_served": self.served,
        }

    def detect(self, request: cap.DetectionRequest) -> cap.DetectionResult:
        prompts = self._prompts(request)
        image = decode_image(request.image, max_pixels=int(self.options["max_pixels"]))
        classes = request.classes if request.classes is not None else self.options.get("classes")
        if classes and max(classes) >= len(self.model.names):
            raise InvalidRequest(
                f"classes must be between 0 and {len(self.model.names) - 1}", param="classes"
            )
        with self.lock:
            results = self.model.predict(
                image,
                conf=self._pick(request.threshold, "confidence"),
                iou=self._pick(request.iou, "iou"),
                imgsz=self._pick(request.image_size, "image_size"),
                max_det=self._pick(request.max_detections, "max_detections"),
                classes=classes,
                retina_masks=True,
                device="cpu",
                verbose=False,
                save=False,
                **prompts,
            )
            assert isinstance(results, list)  # not streamed: a list, one result per image
            self.served += 1
        return cap.DetectionResult(detections=self._detections(results[0]))

    def _prompts(self, request: cap.DetectionRequest) -> dict[str, Any]:
        """FastSAM's ``points``, ``labels`` and ``bboxes`` from the request; a 400 where the model takes
        none."""
        if request.prompt is not None:
            raise NotSupported(TEXT_PROMPTS, param="prompt")
        points, boxes = request.points or [], request.boxes or []
        if not points and not boxes:
            return {}
        if self.kind != "fastsam":
            raise NotSupported(
                f"This {self.task} model takes no points or boxes; FastSAM models do (kind: fastsam)",
                param="points" if points else "boxes",
            )
        if any(len(p) == 3 and p[2] not in (0, 1) for p in points):
            raise InvalidRequest(
                "A point's label (its third number) is 1 (on the object) or 0 (not on it)", param="points"
            )
        if any(x2 <= x1 or y2 <= y1 for x1, y1, x2, y2 in boxes):
            raise InvalidRequest("A box is [x1, y1, x2, y2] with x2 > x1 and y2 > y1", param="boxes")
        prompts: dict[str, Any] = {"bboxes": boxes or None}
        if points:
            prompts |= {
                "points": [p[:2] for p in points],
                "labels": [int(p[2]) if len(p) == 3 else 1 for p in points],
            }
        return prompts

    def _pick(self, given: Any, option: str) -> Any:
        """The request's value, else the model config's."""
        return given if given is not None else self.options[option]

    def _detections(self, result: Any) -> list[cap.Detection]:
        boxes = result.obb if self.task == "obb" else result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        corners = boxes.xyxy.tolist()
        confidences = boxes.conf.tolist()
        names = [result.names[int(c)] for c in boxes.cls.tolist()]
        masks = self._masks(result) if result.masks is not None else [None] * len(corners)
        return [
            cap.Detection(
                x=x1, y=y1, width=x2 - x1, height=y2 - y1, confidence=conf, class_name=name, mask=mask
            )
            for (x1, y1, x2, y2), conf, name, mask in zip(corners, confidences, names, masks, strict=True)
        ]

    @staticmethod
    def _masks(result: Any) -> list[bytes]:
        """One PNG per detection: 255 inside the object, 0 outside, at the original image's size
        (``retina_masks`` makes ultralytics compute them at that size)."""
        from PIL import Image

        pngs = []
        for mask in (result.masks.data > 0.5).cpu().numpy():
            buffer = io.BytesIO()
            Image.fromarray(mask.astype("uint8") * 255, mode="L").save(buffer, format="PNG")
            pngs.append(buffer.getvalue())
        return pngs
