"""Typed capability requests, results and streaming chunks.

These structs are the contract between the HTTP layer and the backends. Every API surface
(OpenAI, Anthropic, Open Responses, LocalLab, LocalAI) translates its wire format into one of the
requests below; a backend's ``predict`` hook returns the matching result, or an iterator of the
matching chunks when ``request.stream`` is true. They travel to the worker process as msgpack,
so every field is a plain msgspec-encodable type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from msgspec import Struct, field


class Capability(StrEnum):
    """What a backend can do; each value names one request type below."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDINGS = "embeddings"
    TOKENIZE = "tokenize"
    DETOKENIZE = "detokenize"
    APPLY_TEMPLATE = "apply_template"
    TRANSCRIPTION = "transcription"
    SPEECH = "speech"
    VAD = "vad"
    DETECTION = "detection"
    RERANK = "rerank"


class _Base(Struct, omit_defaults=True, kw_only=True):
    pass


# --- shared pieces -------------------------------------------------------------------------------


class Usage(_Base):
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Of ``prompt_tokens``, those the engine's prompt cache held instead of computing them again."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Sampling(_Base):
    """Generation parameters shared by chat and completion. ``None`` means the model's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logit_bias: dict[str, float] | None = None


class TopLogprob(_Base):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Base):
    """Log probability of one generated token, with the most likely alternatives."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = field(default_factory=list)


# --- chat ----------------------------------------------------------------------------------------


class ContentPart(_Base):
    """One part of a multi-part message: ``text``, ``image_url`` or ``input_audio``."""

    type: str
    text: str | None = None
    image_url: dict[str, Any] | None = None
    input_audio: dict[str, Any] | None = None


class FunctionCall(_Base):
    name: str
    arguments: str = "{}"


class ToolCall(_Base):
    id: str
    function: FunctionCall
    type: str = "function"


class FunctionDef(_Base):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Base):
    function: FunctionDef
    type: str = "function"


class ChatMessage(_Base):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with the text parts of a multi-part message joined."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ResponseFormat(_Base):
    """``text``, ``json_object`` or ``json_schema`` (with ``schema`` set)."""

    type: str = "text"
    schema: dict[str, Any] | None = None


class ChatRequest(_Base, tag="chat"):
    messages: list[ChatMessage]
    sampling: Sampling = field(default_factory=Sampling)
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    grammar: str | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False


class ChatResult(_Base, tag="chat"):
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    logprobs: list[TokenLogprob] | None = None
    stop_sequence: str | None = None
    """The entry of ``sampling.stop`` that ended generation, when the backend knows it."""


class ToolCallDelta(_Base):
    index: int
    id: str | None = None
    function: FunctionCall | None = None
    type: str | None = "function"


class ChatChunk(_Base, tag="chat"):
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    logprobs: list[TokenLogprob] | None = None
    stop_sequence: str | None = None


# --- completion ----------------------------------------------------------------------------------


class CompletionRequest(_Base, tag="completion"):
    prompt: str
    prompt_tokens: list[int] | None = None
    """The prompt as the client's token ids, when it sent ids (``prompt`` is then their text): a backend
    with a tokenizer evaluates these exactly; one without uses ``prompt``."""
    sampling: Sampling = field(default_factory=Sampling)
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = None
    response_format: ResponseFormat | None = None
    grammar: str | None = None
    stream: bool = False


class CompletionResult(_Base, tag="completion"):
    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    logprobs: list[TokenLogprob] | None = None
    stop_sequence: str | None = None
    """The entry of ``sampling.stop`` that ended generation, when the backend knows it."""


class CompletionChunk(_Base, tag="completion"):
    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    logprobs: list[TokenLogprob] | None = None
    stop_sequence: str | None = None


# --- embeddings and tokens -----------------------------------------------------------------------


class EmbeddingsRequest(_Base, tag="embeddings"):
    input: list[str]
    dimensions: int | None = None


class EmbeddingsResult(_Base, tag="embeddings"):
    embeddings: list[list[float]]
    usage: Usage = field(default_factory=Usage)


class TokenizeRequest(_Base, tag="tokenize"):
    content: str
    add_special: bool = True


class TokenizeResult(_Base, tag="tokenize"):
    tokens: list[int]


class DetokenizeRequest(_Base, tag="detokenize"):
    tokens: list[int]


class DetokenizeResult(_Base, tag="detokenize"):
    content: str


class ApplyTemplateRequest(_Base, tag="apply_template"):
    """Messages (and tools) to the prompt text the model's chat template makes of them, as a chat request
    with them would be generated from; nothing is generated."""

    messages: list[ChatMessage]
    tools: list[Tool] | None = None
    add_generation_prompt: bool = True


class ApplyTemplateResult(_Base, tag="apply_template"):
    prompt: str


# --- audio ---------------------------------------------------------------------------------------


class TranscriptionRequest(_Base, tag="transcription"):
    """Audio is passed as a path to a file the server wrote in its data directory, so large uploads
    are not copied through the IPC channel."""

    audio_path: str
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    translate: bool = False
    word_timestamps: bool = False
    vad_filter: bool = False
    stream: bool = False


class Word(_Base):
    word: str
    start: float
    end: float
    probability: float | None = None


class Segment(_Base):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = None
    compression_ratio: float | None = None
    tokens: list[int] | None = None


class TranscriptionResult(_Base, tag="transcription"):
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[Segment] = field(default_factory=list)


class TranscriptionChunk(_Base, tag="transcription"):
    """One transcribed segment; the last chunk also carries ``language`` and ``duration``."""

    segment: Segment | None = None
    language: str | None = None
    duration: float | None = None


AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "pcm")
"""Encodings a speech backend may be asked for; ``pcm`` is mono 16-bit little-endian samples."""


class SpeechRequest(_Base, tag="speech"):
    """``response_format`` is one of :data:`AUDIO_FORMATS`; the backend encodes (a backend that
    cannot raises :class:`~kernai.errors.NotSupported`). ``sample_rate`` asks for resampling
    (``None``: the voice's own rate)."""

    input: str
    voice: str | None = None
    speed: float = 1.0
    stream: bool = False
    response_format: str = "pcm"
    sample_rate: int | None = None


class SpeechResult(_Base, tag="speech"):
    """The whole audio in ``format`` (``pcm``: mono 16-bit little-endian)."""

    audio: bytes
    sample_rate: int
    format: str = "pcm"


class SpeechChunk(_Base, tag="speech"):
    """The next bytes of the encoded stream; concatenated, the chunks form one valid file."""

    audio: bytes
    sample_rate: int
    format: str = "pcm"


class VoicesRequest(_Base, tag="voices"):
    """Which voices a speech model offers (capability ``speech``)."""


class Voice(_Base):
    id: str
    name: str
    language: str | None = None


class VoicesResult(_Base, tag="voices"):
    voices: list[Voice]
    default: str | None = None


class VADRequest(_Base, tag="vad"):
    """Mono float32 little-endian PCM at ``sample_rate`` Hz in ``audio``, or, when ``audio_path`` is
    set, an audio file in any common format (written by the server in its data directory) that the
    backend decodes and resamples."""

    audio: bytes = b""
    sample_rate: int = 16000
    audio_path: str | None = None


class VADSegment(_Base):
    start: float
    end: float


class VADResult(_Base, tag="vad"):
    segments: list[VADSegment]


# --- vision and rerank ---------------------------------------------------------------------------


class DetectionRequest(_Base, tag="detection"):
    """``image`` holds the encoded image file (JPEG, PNG, ...)."""

    image: bytes
    threshold: float | None = None
    prompt: str | None = None
    points: list[list[float]] | None = None
    boxes: list[list[float]] | None = None
    image_size: int | None = None
    iou: float | None = None
    max_detections: int | None = None
    classes: list[int] | None = None


class Detection(_Base):
    x: float
    y: float
    width: float
    height: float
    confidence: float
    class_name: str
    mask: bytes | None = None


class DetectionResult(_Base, tag="detection"):
    detections: list[Detection]


class RerankRequest(_Base, tag="rerank"):
    query: str
    documents: list[str]
    top_n: int | None = None


class RerankScore(_Base):
    index: int
    relevance_score: float


class RerankResult(_Base, tag="rerank"):
    """Scores in document order; the HTTP layer sorts and trims them."""

    results: list[RerankScore]
    usage: Usage = field(default_factory=Usage)


Request = (
    ChatRequest
    | CompletionRequest
    | EmbeddingsRequest
    | TokenizeRequest
    | DetokenizeRequest
    | ApplyTemplateRequest
    | TranscriptionRequest
    | SpeechRequest
    | VoicesRequest
    | VADRequest
    | DetectionRequest
    | RerankRequest
)
Result = (
    ChatResult
    | CompletionResult
    | EmbeddingsResult
    | TokenizeResult
    | DetokenizeResult
    | ApplyTemplateResult
    | TranscriptionResult
    | SpeechResult
    | VoicesResult
    | VADResult
    | DetectionResult
    | RerankResult
)
Chunk = ChatChunk | CompletionChunk | TranscriptionChunk | SpeechChunk

CAPABILITY_OF: dict[type[Struct], Capability] = {
    ChatRequest: Capability.CHAT,
    CompletionRequest: Capability.COMPLETION,
    EmbeddingsRequest: Capability.EMBEDDINGS,
    TokenizeRequest: Capability.TOKENIZE,
    DetokenizeRequest: Capability.DETOKENIZE,
    ApplyTemplateRequest: Capability.APPLY_TEMPLATE,
    TranscriptionRequest: Capability.TRANSCRIPTION,
    SpeechRequest: Capability.SPEECH,
    VoicesRequest: Capability.SPEECH,
    VADRequest: Capability.VAD,
    DetectionRequest: Capability.DETECTION,
    RerankRequest: Capability.RERANK,
}


def capability_of(request: Request) -> Capability:
    """The capability a request needs."""
    return CAPABILITY_OF[type(request)]


__all__ = [name for name in dir() if not name.startswith("_") and name not in {"annotations", "msgspec"}]
