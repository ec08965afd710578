"""Voice activity detection: LocalAI's ``POST /vad`` (JSON float samples) or an uploaded audio file."""

from __future__ import annotations

import sys
from array import array
from typing import Any

import msgspec
from litestar import Controller, Request, post

from kernai import capabilities as cap
from kernai.errors import InvalidRequest
from kernai.http.browser_guard import BODY_MEDIA_TYPES, JSON, MULTIPART
from kernai.http.inference import pick_model
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.http.uploads import read_multipart, upload_dir
from kernai.manager import ModelManager
from kernai.settings import Settings
from kernai.surfaces.localai.schemas import VADBody, VADOperation, VADResponse, VADSegmentOut


def _float32_le(samples: list[float]) -> bytes:
    packed = array("f", samples)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


async def _typed_request(
    request: Request[Any, Any, Any], settings: Settings
) -> tuple[str | None, cap.VADRequest, Any]:
    """The model name, the typed request, and the form whose files to remove afterwards (or ``None``)."""
    if request.content_type[0] == "multipart/form-data":
        form = await read_multipart(request, upload_dir(settings.data_path))
        upload = form.files.get("file")
        if upload is None or upload.size == 0:
            form.cleanup()
            raise InvalidRequest(
                "Missing or empty 'file': upload the audio as a multipart file field", param="file"
            )
        return form.get("model"), cap.VADRequest(audio_path=str(upload.path)), form
    try:
        body = msgspec.json.decode(await request.body(), type=VADBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidRequest(f"Invalid request: {exc}") from None
    if not body.audio:
        raise InvalidRequest("'audio' is empty: send float samples", param="audio")
    return body.model, cap.VADRequest(audio=_float32_le(body.audio), sample_rate=body.sample_rate), None


class VADController(Controller):
    tags = ["audio"]
    opt = route_opt(RouteClass.INFERENCE)

    @post(
        ["/vad", "/v1/vad"],
        status_code=200,
        operation_class=VADOperation,
        opt={BODY_MEDIA_TYPES: [JSON, MULTIPART]},
        summary="Speech segments in seconds (LocalAI: JSON {model, audio: [float32 at 16 kHz]}; "
        "or multipart file)",
    )
    async def vad(
        self, request: Request[Any, Any, Any], manager: ModelManager, settings: Settings
    ) -> VADResponse:
        caller = caller_of(request.scope)
        model, typed, form = await _typed_request(request, settings)
        try:
            result = await manager.predict(
                pick_model(manager, model, cap.Capability.VAD), typed, caller=caller
            )
        finally:
            if form is not None:
                form.cleanup()
        assert isinstance(result, cap.VADResult)
        return VADResponse([VADSegmentOut(s.start, s.end) for s in result.segments])
