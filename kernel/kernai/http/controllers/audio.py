"""Audio surfaces: OpenAI transcription, translation and speech; LocalAI ``/tts``; ElevenLabs text to speech.

Uploads are streamed to a file in the data directory (``tmp/uploads``) and the backend reads that
file, so audio never crosses the worker pipe and is never held whole in the server's memory; the
file is removed when the response (streamed or not) is over. Body size limits are the server's
(``body_size_limits`` in the settings).
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Stream

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.browser_guard import BODY_MEDIA_TYPES, MULTIPART
from kernai.http.inference import prefetch, sse_event, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.schemas.audio import (
    CONTENT_TYPES,
    OPENAI_PCM_RATE,
    SAMPLE_RATES,
    ElevenLabsBody,
    ElevenLabsVoice,
    ElevenLabsVoices,
    ModelVoices,
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechBody,
    SpeechUsage,
    Transcription,
    TranscriptionForm,
    TranscriptionOperation,
    TranscriptionSegment,
    TranscriptionVerbose,
    TranscriptionWord,
    TranscriptTextDelta,
    TranscriptTextDone,
    TTSBody,
    VoiceInfo,
    VoicesList,
)
from kernai.http.subtitles import srt, vtt
from kernai.http.uploads import UploadedForm, read_multipart, upload_dir
from kernai.manager import ModelManager
from kernai.settings import Settings


class VoiceNotFound(KernaiError):
    """No speech model has a voice of that id: 404."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, voice_id: str) -> None:
        super().__init__(
            f"No speech model has the voice '{voice_id}'", param="voice_id", code="voice_not_found"
        )


def pick_model(manager: ModelManager, name: str | None, capability: cap.Capability) -> str:
    """``name``, or the only configured model with ``capability`` when the client named none."""
    if name:
        return name
    candidates = [model.name for model in manager.models.values() if model.supports(capability)]
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidRequest(
        f"Missing 'model': name one of the {capability.value} models "
        f"({', '.join(candidates) or 'none configured'})",
        param="model",
    )


def _convert(data: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        match = re.search(r"at `\$\.([^`]+)`", str(exc))
        raise InvalidRequest(f"Invalid request: {exc}", param=match.group(1) if match else None) from None


# --- transcription -------------------------------------------------------------------------------


def _transcription_request(
    form: UploadedForm, translate: bool
) -> tuple[TranscriptionForm, cap.TranscriptionRequest]:
    upload = form.files.get("file")
    if upload is None:
        raise InvalidRequest("Missing 'file': upload the audio as a multipart file field", param="file")
    if upload.size == 0:
        raise InvalidRequest("The uploaded file is empty", param="file")
    fields = {k: v for k, v in form.scalars().items() if not k.startswith("chunking_strategy")}
    params: TranscriptionForm = _convert(fields, TranscriptionForm)
    if params.temperature is not None and not 0.0 <= params.temperature <= 1.0:
        raise InvalidRequest("'temperature' must be between 0 and 1", param="temperature")
    server_vad = any(name.startswith("chunking_strategy") for name in form.fields)
    request = cap.TranscriptionRequest(
        audio_path=str(upload.path),
        language=None if translate else (params.language or None),
        prompt=params.prompt or None,
        temperature=params.temperature,
        translate=translate,
        word_timestamps="word" in params.timestamp_granularities,
        vad_filter=params.vad_filter or server_vad,
        stream=params.stream,
    )
    return params, request


def _verbose(result: cap.TranscriptionResult, params: TranscriptionForm, task: str) -> TranscriptionVerbose:
    granularities = params.timestamp_granularities or ["segment"]
    segments = None
    if "segment" in granularities:
        segments = [
            TranscriptionSegment(
                id=s.id,
                seek=int(s.start * 100),
                start=s.start,
                end=s.end,
                text=s.text,
                tokens=s.tokens or [],
                temperature=s.temperature or 0.0,
                avg_logprob=s.avg_logprob or 0.0,
                compression_ratio=s.compression_ratio or 0.0,
                no_speech_prob=s.no_speech_prob or 0.0,
            )
            for s in result.segments
        ]
    words = None
    if "word" in granularities:
        words = [
            TranscriptionWord(w.word.strip(), w.start, w.end) for s in result.segments for w in s.words or []
        ]
    return TranscriptionVerbose(
        task=task,
        language=result.language or "",
        duration=result.duration or 0.0,
        text=result.text,
        segments=segments,
        words=words,
    )


def _transcript_response(
    result: cap.TranscriptionResult, params: TranscriptionForm, task: str
) -> Response[Any]:
    match params.response_format:
        case "text":
            return Response(result.text, media_type="text/plain")
        case "srt":
            return Response(srt(result.segments), media_type="text/plain")
        case "vtt":
            return Response(vtt(result.segments), media_type="text/vtt")
        case "verbose_json":
            return Response(_verbose(result, params, task))
    return Response(Transcription(result.text))


async def _transcript_events(
    chunks: AsyncGenerator[cap.Chunk, None], form: UploadedForm
) -> AsyncGenerator[bytes, None]:
    texts: list[str] = []
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                assert isinstance(chunk, cap.TranscriptionChunk)
                if chunk.segment is not None:
                    texts.append(chunk.segment.text)
                    yield sse_event(
                        TranscriptTextDelta(
                            delta=chunk.segment.text, start=chunk.segment.start, end=chunk.segment.end
                        )
                    )
                else:
                    yield sse_event(
                        TranscriptTextDone(
                            text="".join(texts).strip(), language=chunk.language, duration=chunk.duration
                        )
                    )
    finally:
        form.cleanup()


# --- speech --------------------------------------------------------------------------------------


async def _speech_bytes(chunks: AsyncGenerator[cap.Chunk, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        async for chunk in chunks:
            assert isinstance(chunk, cap.SpeechChunk)
            yield chunk.audio


async def _speech_events(
    chunks: AsyncGenerator[cap.Chunk, None], characters: int
) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        async for chunk in chunks:
            assert isinstance(chunk, cap.SpeechChunk)
            yield sse_event(SpeechAudioDelta(base64.b64encode(chunk.audio).decode()))
    yield sse_event(SpeechAudioDone(SpeechUsage(characters, 0, characters)))


async def speak(
    manager: ModelManager, caller: Caller, model: str, request: cap.SpeechRequest, *, sse: bool = False
) -> Response[Any]:
    """Run a speech request and answer with the audio (whole, chunked, or as SSE events)."""
    if request.sample_rate is not None and request.sample_rate not in SAMPLE_RATES:
        raise InvalidRequest(
            f"sample_rate must be one of {', '.join(map(str, sorted(SAMPLE_RATES)))}", param="sample_rate"
        )
    media_type = CONTENT_TYPES[request.response_format]
    if request.stream or sse:
        request = msgspec.structs.replace(request, stream=True)
        chunks = await prefetch(manager.stream(model, request, caller=caller))
        if sse:
            return sse_response(_speech_events(chunks, len(request.input)))
        return Stream(_speech_bytes(chunks), media_type=media_type)
    result = await manager.predict(model, request, caller=caller)
    assert isinstance(result, cap.SpeechResult)
    return Response(result.audio, media_type=media_type, headers={"X-Sample-Rate": str(result.sample_rate)})


async def model_voices(manager: ModelManager, caller: Caller, name: str) -> ModelVoices:
    result = await manager.predict(name, cap.VoicesRequest(), caller=caller)
    assert isinstance(result, cap.VoicesResult)
    return ModelVoices(
        model=name,
        voices=[VoiceInfo(id=v.id, name=v.name, language=v.language) for v in result.voices],
        default=result.default,
    )


def _speech_models(manager: ModelManager) -> list[str]:
    return [
        m.name for m in manager.models.values() if m.supports(cap.Capability.SPEECH) and not m.config.disabled
    ]


async def _model_for_voice(
    manager: ModelManager, caller: Caller, voice_id: str, model_id: str | None
) -> tuple[str, str | None]:
    """ElevenLabs names only a voice: it may be a speech model's name, or a voice of one of them."""
    if model_id and model_id in manager.models:
        return model_id, voice_id
    if voice_id in manager.models:
        return voice_id, None
    for name in _speech_models(manager):
        if any(v.id == voice_id for v in (await model_voices(manager, caller, name)).voices):
            return name, voice_id
    raise VoiceNotFound(voice_id)


_ELEVENLABS_FORMAT = re.compile(r"^(mp3|pcm|opus|wav|flac)_(\d+)(?:_\d+)?$")


def _elevenlabs_format(output_format: str) -> tuple[str, int]:
    match = _ELEVENLABS_FORMAT.match(output_format)
    if match is None:
        raise InvalidRequest(
            f"output_format '{output_format}' is not supported (use mp3_44100_128, pcm_16000, "
            "pcm_22050, pcm_24000, opus_48000_64, wav_22050 ...)",
            param="output_format",
        )
    return match.group(1), int(match.group(2))


class AudioController(Controller):
    tags = ["audio"]
    opt = route_opt(RouteClass.INFERENCE)

    async def _transcribe(
        self,
        request: Request[Any, Any, Any],
        manager: ModelManager,
        caller: Caller,
        settings: Settings,
        translate: bool,
    ) -> Response[Any]:
        form = await read_multipart(request, upload_dir(settings.data_path))
        handed_off = False
        try:
            params, typed = _transcription_request(form, translate)
            task = "translate" if translate else "transcribe"
            model = pick_model(manager, params.model, cap.Capability.TRANSCRIPTION)
            if typed.stream:
                chunks = await prefetch(manager.stream(model, typed, caller=caller))
                handed_off = True
                return sse_response(_transcript_events(chunks, form))
            result = await manager.predict(model, typed, caller=caller)
            assert isinstance(result, cap.TranscriptionResult)
            return _transcript_response(result, params, task)
        finally:
            if not handed_off:
                form.cleanup()

    @post(
        "/v1/audio/transcriptions",
        status_code=200,
        operation_class=TranscriptionOperation,
        opt={BODY_MEDIA_TYPES: [MULTIPART]},
        summary="Transcribe audio (OpenAI; multipart: file, model, language, prompt, temperature, "
        "response_format, timestamp_granularities[], stream)",
    )
    async def transcriptions(
        self, request: Request[Any, Any, Any], manager: ModelManager, caller: Caller, settings: Settings
    ) -> Response[Any]:
        return await self._transcribe(request, manager, caller, settings, translate=False)

    @post(
        "/v1/audio/translations",
        status_code=200,
        operation_class=TranscriptionOperation,
        opt={BODY_MEDIA_TYPES: [MULTIPART]},
        summary="Translate audio to English text (OpenAI; multipart like transcriptions)",
    )
    async def translations(
        self, request: Request[Any, Any, Any], manager: ModelManager, caller: Caller, settings: Settings
    ) -> Response[Any]:
        return await self._transcribe(request, manager, caller, settings, translate=True)

    @post("/v1/audio/speech", status_code=200, summary="Text to speech (OpenAI)")
    async def speech(self, data: SpeechBody, manager: ModelManager, caller: Caller) -> Response[Any]:
        model = pick_model(manager, data.model, cap.Capability.SPEECH)
        rate = data.sample_rate or (OPENAI_PCM_RATE if data.response_format == "pcm" else None)
        typed = cap.SpeechRequest(
            input=data.input,
            voice=data.voice,
            speed=data.speed,
            stream=data.stream,
            response_format=data.response_format,
            sample_rate=rate,
        )
        return await speak(manager, caller, model, typed, sse=data.stream_format == "sse")

    @post("/tts", status_code=200, summary="Text to speech (LocalAI)")
    async def tts(self, data: TTSBody, manager: ModelManager, caller: Caller) -> Response[Any]:
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
        caller: Caller,
        output_format: str = "mp3_44100_128",
    ) -> Response[Any]:
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

    @get("/v1/audio/voices", summary="Voices of each speech model (or of ?model=)")
    async def voices(self, manager: ModelManager, caller: Caller, model: str | None = None) -> VoicesList:
        names = [model] if model else _speech_models(manager)
        return VoicesList([await model_voices(manager, caller, name) for name in names])

    @get("/v1/voices", summary="Voices of every speech model (ElevenLabs)")
    async def elevenlabs_voices(self, manager: ModelManager, caller: Caller) -> ElevenLabsVoices:
        voices = []
        for name in _speech_models(manager):
            for voice in (await model_voices(manager, caller, name)).voices:
                labels = {"model": name} | ({"language": voice.language} if voice.language else {})
                voices.append(ElevenLabsVoice(voice_id=voice.id, name=voice.name, labels=labels))
        return ElevenLabsVoices(voices)
