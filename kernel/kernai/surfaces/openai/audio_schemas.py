"""Wire formats of OpenAI's audio API: transcription, translation, speech, and the voices of each
speech model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from msgspec import Struct, field

from kernai.http.speech import SpeechFormat
from kernai.http.uploads import AUDIO_FILE, form_schema, string_schema
from kernai.http.wire import Int64

TranscriptFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
OPENAI_PCM_RATE = 24000
"""OpenAI's ``pcm`` is 24 kHz; clients read it without a header, so kernai resamples to match."""


# --- transcription -------------------------------------------------------------------------------


class TranscriptionForm(Struct, kw_only=True):
    """The multipart fields of ``/v1/audio/transcriptions`` and ``/v1/audio/translations`` (besides
    ``file``)."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: TranscriptFormat = "json"
    timestamp_granularities: list[Literal["word", "segment"]] = field(default_factory=list)
    stream: bool = False
    vad_filter: bool = False
    """kernai's switch for skipping silence; OpenAI's ``chunking_strategy`` turns it on too."""


class Transcription(Struct):
    text: str


class TranscriptionWord(Struct):
    word: str
    start: float
    end: float


class TranscriptionSegment(Struct, kw_only=True):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionVerbose(Struct, kw_only=True, omit_defaults=True):
    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None


class TranscriptTextDelta(
    Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="transcript.text.delta"
):
    """One streamed segment (OpenAI's streaming transcription event, with the segment's times added)."""

    delta: str
    start: float | None = None
    end: float | None = None


class TranscriptTextDone(
    Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="transcript.text.done"
):
    text: str
    language: str | None = None
    duration: float | None = None


# --- speech --------------------------------------------------------------------------------------


class SpeechBody(Struct, kw_only=True):
    """``POST /v1/audio/speech`` (OpenAI), plus ``stream`` for raw chunked audio."""

    model: str | None = None
    input: str
    voice: str | None = None
    response_format: SpeechFormat = "mp3"
    speed: float = 1.0
    stream: bool = False
    stream_format: Literal["audio", "sse"] = "audio"
    sample_rate: Int64 | None = None
    instructions: str | None = None
    """Accepted for compatibility; piper voices have no style control."""


class SpeechAudioDelta(Struct, tag_field="type", tag="speech.audio.delta"):
    audio: str
    """Base64 of the next encoded bytes."""


class SpeechUsage(Struct):
    """Characters of input; piper has no audio tokens, so ``output_tokens`` is 0."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDone(Struct, tag_field="type", tag="speech.audio.done"):
    usage: SpeechUsage


class VoiceInfo(Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str
    language: str | None = None


class ModelVoices(Struct, kw_only=True, omit_defaults=True):
    model: str
    voices: list[VoiceInfo]
    default: str | None = None


class VoicesList(Struct):
    """``GET /v1/audio/voices``: the voices of each speech model."""

    data: list[ModelVoices]
    object: str = "list"


# --- OpenAPI for the handlers that parse their multipart body themselves --------------------------


TRANSCRIPTION_FORM_SCHEMA = form_schema(
    ["file", "model"],
    {
        "file": AUDIO_FILE,
        "model": string_schema("A transcription model"),
        "language": string_schema("ISO-639-1 code of the spoken language (transcriptions only)"),
        "prompt": string_schema("Text to guide the style or continue a previous segment"),
        "temperature": Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1),
        "response_format": string_schema("Answer format", ["json", "text", "srt", "vtt", "verbose_json"]),
        "timestamp_granularities[]": Schema(
            type=OpenAPIType.ARRAY, items=string_schema("", ["word", "segment"])
        ),
        "stream": Schema(type=OpenAPIType.BOOLEAN, description="Server-sent events, one per segment"),
        "vad_filter": Schema(type=OpenAPIType.BOOLEAN, description="Skip silence (also: chunking_strategy)"),
    },
)


@dataclass
class TranscriptionOperation(Operation):
    """The OpenAPI operation of ``/v1/audio/transcriptions`` and ``/translations``: a multipart form."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=TRANSCRIPTION_FORM_SCHEMA)}
        )
