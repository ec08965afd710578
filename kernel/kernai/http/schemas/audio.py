"""Wire formats of the audio surfaces: OpenAI transcription/translation/speech, LocalAI ``/tts`` and
``/vad``, ElevenLabs text to speech."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from msgspec import Struct, field

from kernai.http.schemas import Int64

TranscriptFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
SpeechFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]

CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}
SAMPLE_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
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


class TTSBody(Struct, kw_only=True):
    """LocalAI's ``POST /tts``."""

    model: str | None = None
    input: str
    voice: str | None = None
    backend: str | None = None
    language: str | None = None
    response_format: SpeechFormat = "wav"
    stream: bool = False


class ElevenLabsVoiceSettings(Struct, kw_only=True):
    """Of ElevenLabs' voice settings only ``speed`` applies to piper; the others are accepted and ignored."""

    speed: float = 1.0


class ElevenLabsBody(Struct, kw_only=True):
    """ElevenLabs' ``POST /v1/text-to-speech/{voice_id}`` body; ``output_format`` is a query parameter."""

    text: str
    model_id: str | None = None
    voice_settings: ElevenLabsVoiceSettings | None = None
    language_code: str | None = None


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


class ElevenLabsVoice(Struct, kw_only=True):
    voice_id: str
    name: str
    category: str = "premade"
    labels: dict[str, str] = field(default_factory=dict)


class ElevenLabsVoices(Struct):
    voices: list[ElevenLabsVoice]


# --- voice activity ------------------------------------------------------------------------------


class VADBody(Struct, kw_only=True):
    """LocalAI's ``POST /vad``: mono float samples at ``sample_rate`` Hz (16 kHz unless said)."""

    model: str | None = None
    audio: list[float]
    sample_rate: Int64 = 16000


class VADSegmentOut(Struct):
    start: float
    end: float


class VADResponse(Struct):
    segments: list[VADSegmentOut]


# --- OpenAPI for the handlers that parse their multipart body themselves --------------------------


def _string(description: str, enum: list[str] | None = None) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, enum=enum)


def _form(required: list[str], properties: dict[str, Reference | Schema]) -> Schema:
    return Schema(type=OpenAPIType.OBJECT, required=required, properties=properties)


_FILE = Schema(
    type=OpenAPIType.STRING,
    format=OpenAPIFormat.BINARY,
    description="Audio in any format FFmpeg reads (wav, mp3, flac, ogg, webm, m4a ...)",
)
TRANSCRIPTION_FORM_SCHEMA = _form(
    ["file", "model"],
    {
        "file": _FILE,
        "model": _string("A transcription model"),
        "language": _string("ISO-639-1 code of the spoken language (transcriptions only)"),
        "prompt": _string("Text to guide the style or continue a previous segment"),
        "temperature": Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1),
        "response_format": _string("Answer format", ["json", "text", "srt", "vtt", "verbose_json"]),
        "timestamp_granularities[]": Schema(type=OpenAPIType.ARRAY, items=_string("", ["word", "segment"])),
        "stream": Schema(type=OpenAPIType.BOOLEAN, description="Server-sent events, one per segment"),
        "vad_filter": Schema(type=OpenAPIType.BOOLEAN, description="Skip silence (also: chunking_strategy)"),
    },
)
VAD_FORM_SCHEMA = _form(["file"], {"file": _FILE, "model": _string("A VAD model (optional when only one)")})
VAD_JSON_SCHEMA = _form(
    ["audio"],
    {
        "model": _string("A VAD model (optional when only one)"),
        "audio": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.NUMBER),
            description="Mono float samples in [-1, 1]",
        ),
        "sample_rate": Schema(type=OpenAPIType.INTEGER, enum=[16000, 8000]),
    },
)


@dataclass
class TranscriptionOperation(Operation):
    """The OpenAPI operation of ``/v1/audio/transcriptions`` and ``/translations``: a multipart form."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True, content={"multipart/form-data": OpenAPIMediaType(schema=TRANSCRIPTION_FORM_SCHEMA)}
        )


@dataclass
class VADOperation(Operation):
    """The OpenAPI operation of ``/vad``: LocalAI's JSON samples or a multipart file."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=VAD_JSON_SCHEMA),
                "multipart/form-data": OpenAPIMediaType(schema=VAD_FORM_SCHEMA),
            },
        )
