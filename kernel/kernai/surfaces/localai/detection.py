"""``POST /v1/detection``: objects in an image, LocalAI's shape."""

from __future__ import annotations

from litestar import Controller, post
from litestar.types import Scope

from kernai.capabilities import DetectionRequest, DetectionResult
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.settings import Settings
from kernai.surfaces.localai.images import image_bytes
from kernai.surfaces.localai.schemas import DetectionRequestWire, DetectionResponse, DetectionWire


class DetectionController(Controller):
    """The image is fetched or decoded from base64 here; the backend decodes and checks the picture."""

    opt = route_opt(RouteClass.INFERENCE)

    @post(["/v1/detection", "/detection"], status_code=200)
    async def detection(
        self, data: DetectionRequestWire, manager: ModelManager, scope: Scope, settings: Settings
    ) -> DetectionResponse:
        caller = caller_of(scope)
        manager.get(data.model, caller=caller)  # an unknown model is a 404 before any download
        image = await image_bytes(
            data.image, time_limit=settings.image_fetch_timeout, max_bytes=settings.image_max_bytes
        )
        request = DetectionRequest(
            image=image,
            threshold=data.threshold,
            prompt=data.prompt,
            points=data.points,
            boxes=data.boxes,
            image_size=data.image_size,
            iou=data.iou,
            max_detections=data.max_detections,
            classes=data.classes,
        )
        result = await manager.predict(data.model, request, caller=caller)
        assert isinstance(result, DetectionResult)
        return DetectionResponse(
            [
                DetectionWire(
                    x=d.x,
                    y=d.y,
                    width=d.width,
                    height=d.height,
                    confidence=d.confidence,
                    class_name=d.class_name,
                    mask=d.mask,
                )
                for d in result.detections
            ]
        )
