"""Text to speech the LocalAI way: ``POST /tts``, and ElevenLabs' ``/v1/text-to-speech/{voice_id}`` and
``/v1/voices``, which LocalAI serves too."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.types import Scope

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.inference import pick_model
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.http.speech import speak, speech_models, voices_of
from kernai.manager import ModelManager
from kernai.surfaces.localai.schemas import ElevenLabsBody, ElevenLabsVoice, ElevenLabsVoices, TTSBody

_ELEVENLABS_FORMAT = re.compile(r"^(mp3|pcm|opus|wav|flac)_(\d+)(?:_\d+)?$")


class VoiceNotFound(KernaiError):
    """No speech model has a voice of that id: 404."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, voice_id: str) -> None:
        super().__init__(
            f"No speech model has the voice '{voice_id}'", param="voice_id", code="voice_not_found"
        )


async def _model_for_voice(
    manager: ModelManager, caller: Caller, voice_id: str, model_id: str | None
) -> tuple[str, str | None]:
    """ElevenLabs names only a voice: it may be a speech model's name, or a voice of one of them."""
    if model_id and model_id in manager.models:
        return model_id, voice_id
    if voice_id in manager.models:
        return voice_id, None
    for name in speech_models(manager):
        if any(v.id == voice_id for v in (await voices_of(manager, caller, name)).voices):
            return name, voice_id
    raise VoiceNotFound(voice_id)


def _elevenlabs_format(output_format: str) -> tuple[str, int]:
    match = _ELEVENLABS_FORMAT.match(output_format)
    if match is None:
        raise InvalidRequest(
            f"output_format '{output_format}' is not supported (use mp3_44100_128, pcm_16000, "
            "pcm_22050, pcm_24000, opus_48000_64, wav_22050 ...)",
            param="output_format",
        )
    return match.group(1), int(match.group(2))


class SpeechController(Controller):
    tags = ["audio"]
    opt = route_opt(RouteClass.INFERENCE)

    @post("/tts", status_code=200, summary="Text to speech (LocalAI)")
    async def tts(self, data: TTSBody, manager: ModelManager, scope: Scope) -> Response[Any]:
        caller = caller_of(scope)
        model = pick_model(manager, data.model, cap.Capability.SPEECH)
        typed = cap.SpeechRequest(
            input=data.input, voice=data.voice, stream=data.stream, response_format=data.response_format
        )
        return await speak(manager, caller, model, typed)

    @post(
        ["/v1/text-to-speech/{voice_id:str}", "/v1/text-to-speech/{voice_id:str}/stream"],
        status_code=200,
        summary="Text to speech (ElevenLabs); the voice id is a voice or a speech model's name",
    )
    async def elevenlabs(
        self,
        request: Request[Any, Any, Any],
        voice_id: str,
        data: ElevenLabsBody,
        manager: ModelManager,
        output_format: str = "mp3_44100_128",
    ) -> Response[Any]:
        caller = caller_of(request.scope)
        fmt, rate = _elevenlabs_format(output_format)
        model, voice = await _model_for_voice(manager, caller, voice_id, data.model_id)
        speed = data.voice_settings.speed if data.voice_settings else 1.0
        typed = cap.SpeechRequest(
            input=data.text,
            voice=voice,
            speed=speed,
            response_format=fmt,
            sample_rate=rate,
            stream=request.url.path.endswith("/stream"),
        )
        return await speak(manager, caller, model, typed)

    @get("/v1/voices", summary="Voices of every speech model (ElevenLabs)")
    async def elevenlabs_voices(self, manager: ModelManager, scope: Scope) -> ElevenLabsVoices:
        caller = caller_of(scope)
        voices = []
        for name in speech_models(manager):
            for voice in (await voices_of(manager, caller, name)).voices:
                labels = {"model": name} | ({"language": voice.language} if voice.language else {})
                voices.append(ElevenLabsVoice(voice_id=voice.id, name=voice.name, labels=labels))
        return ElevenLabsVoices(voices)
