"""LocalAI's wire formats: tokenize, rerank (Jina / Cohere shape), detection (plus ultralytics-style
overrides), ``/tts`` and ElevenLabs text to speech, ``/vad``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from msgspec import Meta, Struct, field

from kernai.http.speech import SpeechFormat
from kernai.http.uploads import AUDIO_FILE, form_schema, string_schema
from kernai.http.wire import Int64, NonNegativeInt, PositiveInt

ModelName = Annotated[str, Meta(min_length=1)]


# --- tokenize --------------------------------------------------------------------------------------


class TokenizeRequestWire(Struct, kw_only=True, omit_defaults=True):
    model: ModelName
    content: str
    add_special: bool = True


class DetokenizeRequestWire(Struct, kw_only=True, omit_defaults=True):
    model: ModelName
    tokens: list[Int64]


class TokenizeResponse(Struct):
    tokens: list[int]


class DetokenizeResponse(Struct):
    content: str


# --- rerank ----------------------------------------------------------------------------------------


class RerankDocumentWire(Struct, kw_only=True):
    """A document given as an object, as Cohere's v1 API and Jina also accept."""

    text: str


class RerankRequestWire(Struct, kw_only=True, omit_defaults=True):
    model: ModelName
    query: Annotated[str, Meta(min_length=1)]
    documents: Annotated[list[str | RerankDocumentWire], Meta(min_length=1)]
    top_n: PositiveInt | None = None
    return_documents: bool = True


class RerankDocumentText(Struct):
    text: str


class RerankResultWire(Struct, kw_only=True, omit_defaults=True):
    index: int
    relevance_score: float
    document: RerankDocumentText | None = None


class RerankUsage(Struct):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(Struct, kw_only=True):
    model: str
    results: list[RerankResultWire]
    usage: RerankUsage


# --- detection -------------------------------------------------------------------------------------


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


# --- speech ----------------------------------------------------------------------------------------


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


class ElevenLabsVoice(Struct, kw_only=True):
    voice_id: str
    name: str
    category: str = "premade"
    labels: dict[str, str] = field(default_factory=dict)


class ElevenLabsVoices(Struct):
    voices: list[ElevenLabsVoice]


# --- voice activity --------------------------------------------------------------------------------


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


VAD_FORM_SCHEMA = form_schema(
    ["file"], {"file": AUDIO_FILE, "model": string_schema("A VAD model (optional when only one)")}
)
VAD_JSON_SCHEMA = form_schema(
    ["audio"],
    {
        "model": string_schema("A VAD model (optional when only one)"),
        "audio": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.NUMBER),
            description="Mono float samples in [-1, 1]",
        ),
        "sample_rate": Schema(type=OpenAPIType.INTEGER, enum=[16000, 8000]),
    },
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
