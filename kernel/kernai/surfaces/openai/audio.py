"""OpenAI's audio API: transcription, translation and speech, and the voices of each speech model.

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
from litestar.types import Scope

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest
from kernai.http.browser_guard import BODY_MEDIA_TYPES, MULTIPART
from kernai.http.inference import pick_model, prefetch, sse_event, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.http.speech import speak, speech_models, voices_of
from kernai.http.uploads import UploadedForm, read_multipart, upload_dir
from kernai.manager import ModelManager
from kernai.settings import Settings
from kernai.surfaces.openai.audio_schemas import (
    OPENAI_PCM_RATE,
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
    VoiceInfo,
    VoicesList,
)
from kernai.surfaces.openai.subtitles import srt, vtt


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


async def _speech_events(
    chunks: AsyncGenerator[cap.Chunk, None], characters: int
) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        async for chunk in chunks:
            assert isinstance(chunk, cap.SpeechChunk)
            yield sse_event(SpeechAudioDelta(base64.b64encode(chunk.audio).decode()))
    yield sse_event(SpeechAudioDone(SpeechUsage(characters, 0, characters)))


def _model_voices(model: str, result: cap.VoicesResult) -> ModelVoices:
    return ModelVoices(
        model=model,
        voices=[VoiceInfo(id=v.id, name=v.name, language=v.language) for v in result.voices],
        default=result.default,
    )


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
        self, request: Request[Any, Any, Any], manager: ModelManager, settings: Settings
    ) -> Response[Any]:
        caller = caller_of(request.scope)
        return await self._transcribe(request, manager, caller, settings, translate=False)

    @post(
        "/v1/audio/translations",
        status_code=200,
        operation_class=TranscriptionOperation,
        opt={BODY_MEDIA_TYPES: [MULTIPART]},
        summary="Translate audio to English text (OpenAI; multipart like transcriptions)",
    )
    async def translations(
        self, request: Request[Any, Any, Any], manager: ModelManager, settings: Settings
    ) -> Response[Any]:
        caller = caller_of(request.scope)
        return await self._transcribe(request, manager, caller, settings, translate=True)

    @post("/v1/audio/speech", status_code=200, summary="Text to speech (OpenAI)")
    async def speech(self, data: SpeechBody, manager: ModelManager, scope: Scope) -> Response[Any]:
        caller = caller_of(scope)
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
        events = _speech_events if data.stream_format == "sse" else None
        return await speak(manager, caller, model, typed, events=events)

    @get("/v1/audio/voices", summary="Voices of each speech model (or of ?model=)")
    async def voices(self, manager: ModelManager, scope: Scope, model: str | None = None) -> VoicesList:
        caller = caller_of(scope)
        names = [model] if model else speech_models(manager)
        return VoicesList([_model_voices(name, await voices_of(manager, caller, name)) for name in names])
