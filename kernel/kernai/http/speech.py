"""Text to speech as every surface that speaks serves it: OpenAI's ``/v1/audio/speech``, LocalAI's
``/tts`` and ElevenLabs' ``/v1/text-to-speech``. The audio comes whole, chunked, or as events the surface
formats; voices come from the speech models themselves."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Literal

import msgspec
from litestar import Response
from litestar.response import Stream

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest
from kernai.http.inference import prefetch, sse_response
from kernai.manager import ModelManager

SpeechFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]
CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}
SAMPLE_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
SpeechEvents = Callable[[AsyncGenerator[cap.Chunk, None], int], AsyncGenerator[bytes, None]]
"""A surface's server-sent events of a speech stream, from the chunks and the input's length."""


async def _speech_bytes(chunks: AsyncGenerator[cap.Chunk, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        async for chunk in chunks:
            assert isinstance(chunk, cap.SpeechChunk)
            yield chunk.audio


async def speak(
    manager: ModelManager,
    caller: Caller,
    model: str,
    request: cap.SpeechRequest,
    *,
    events: SpeechEvents | None = None,
) -> Response[Any]:
    """Run a speech request and answer with the audio: whole, chunked (``request.stream``), or as the
    server-sent ``events`` given."""
    if request.sample_rate is not None and request.sample_rate not in SAMPLE_RATES:
        raise InvalidRequest(
            f"sample_rate must be one of {', '.join(map(str, sorted(SAMPLE_RATES)))}", param="sample_rate"
        )
    media_type = CONTENT_TYPES[request.response_format]
    if request.stream or events is not None:
        request = msgspec.structs.replace(request, stream=True)
        chunks = await prefetch(manager.stream(model, request, caller=caller))
        if events is not None:
            return sse_response(events(chunks, len(request.input)))
        return Stream(_speech_bytes(chunks), media_type=media_type)
    result = await manager.predict(model, request, caller=caller)
    assert isinstance(result, cap.SpeechResult)
    return Response(result.audio, media_type=media_type, headers={"X-Sample-Rate": str(result.sample_rate)})


async def voices_of(manager: ModelManager, caller: Caller, model: str) -> cap.VoicesResult:
    """The voices of the speech model ``model``."""
    result = await manager.predict(model, cap.VoicesRequest(), caller=caller)
    assert isinstance(result, cap.VoicesResult)
    return result


def speech_models(manager: ModelManager) -> list[str]:
    """The enabled models that speak."""
    return [
        m.name for m in manager.models.values() if m.supports(cap.Capability.SPEECH) and not m.config.disabled
    ]
