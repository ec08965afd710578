"""The capability structs (what travels between the HTTP layer and a worker), the sample inputs, and
what a backend declares about its options."""

from __future__ import annotations

import io
import typing
import wave
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kernai import Backend, BackendOption
from kernai import capabilities as cap
from kernai.samples import DEFAULT_REQUESTS, sample_request, tone_pcm, tone_wav

REQUESTS: list[cap.Request] = [
    cap.ChatRequest(
        messages=[
            cap.ChatMessage(role="system", content="be brief"),
            cap.ChatMessage(
                role="user",
                content=[
                    cap.ContentPart(type="text", text="what is "),
                    cap.ContentPart(type="image_url", image_url={"url": "data:image/png;base64,AA=="}),
                    cap.ContentPart(type="text", text="this?"),
                ],
            ),
            cap.ChatMessage(
                role="assistant",
                tool_calls=[
                    cap.ToolCall(id="c1", function=cap.FunctionCall(name="look", arguments='{"x":1}'))
                ],
            ),
            cap.ChatMessage(role="tool", content="a cat", tool_call_id="c1"),
        ],
        sampling=cap.Sampling(max_tokens=5, temperature=0.5, stop=["\n"], logit_bias={"7": -1.0}),
        tools=[cap.Tool(function=cap.FunctionDef(name="look", parameters={"type": "object"}))],
        tool_choice={"type": "function", "function": {"name": "look"}},
        response_format=cap.ResponseFormat(type="json_schema", schema={"type": "object"}),
        logprobs=True,
        top_logprobs=2,
        stream=True,
    ),
    cap.CompletionRequest(prompt="once", suffix="end", echo=True, logprobs=1),
    cap.EmbeddingsRequest(input=["a", "b"], dimensions=8),
    cap.TokenizeRequest(content="hi", add_special=False),
    cap.DetokenizeRequest(tokens=[1, 2]),
    cap.ApplyTemplateRequest(
        messages=[cap.ChatMessage(role="user", content="hi")],
        tools=[cap.Tool(function=cap.FunctionDef(name="f"))],
        add_generation_prompt=False,
    ),
    cap.TranscriptionRequest(audio_path="/tmp/a.wav", language="en", word_timestamps=True),
    cap.SpeechRequest(input="hello", voice="joe", response_format="wav", sample_rate=22050),
    cap.VoicesRequest(),
    cap.VADRequest(audio=b"\x00\x01", sample_rate=8000),
    cap.DetectionRequest(image=b"\xff\xd8", threshold=0.3, points=[[1.0, 2.0]], classes=[0]),
    cap.RerankRequest(query="q", documents=["d1", "d2"], top_n=1),
]
RESULTS: list[cap.Result] = [
    cap.ChatResult(
        content=None,
        tool_calls=[cap.ToolCall(id="c", function=cap.FunctionCall(name="f"))],
        finish_reason="tool_calls",
        usage=cap.Usage(prompt_tokens=3, completion_tokens=4),
        logprobs=[
            cap.TokenLogprob(token="a", logprob=-0.1, top_logprobs=[cap.TopLogprob(token="b", logprob=-2)])
        ],
    ),
    cap.CompletionResult(text="x", finish_reason="length"),
    cap.EmbeddingsResult(embeddings=[[0.5, -0.5]]),
    cap.TokenizeResult(tokens=[1]),
    cap.DetokenizeResult(content="hi"),
    cap.ApplyTemplateResult(prompt="<|user|>hi\n"),
    cap.TranscriptionResult(
        text="hi", language="en", duration=1.5, segments=[cap.Segment(id=0, start=0, end=1.5, text="hi")]
    ),
    cap.SpeechResult(audio=b"RIFF", sample_rate=16000, format="wav"),
    cap.VoicesResult(voices=[cap.Voice(id="joe", name="Joe", language="en")], default="joe"),
    cap.VADResult(segments=[cap.VADSegment(start=0.1, end=0.9)]),
    cap.DetectionResult(
        detections=[
            cap.Detection(x=1, y=2, width=3, height=4, confidence=0.9, class_name="cat", mask=b"\x89")
        ]
    ),
    cap.RerankResult(results=[cap.RerankScore(index=1, relevance_score=0.7)]),
]
CHUNKS: list[cap.Chunk] = [
    cap.ChatChunk(
        tool_calls=[cap.ToolCallDelta(index=0, function=cap.FunctionCall(name="f", arguments="{"))],
        finish_reason="tool_calls",
        stop_sequence="\n",
    ),
    cap.CompletionChunk(text="t", usage=cap.Usage(completion_tokens=1)),
    cap.TranscriptionChunk(segment=cap.Segment(id=1, start=1, end=2, text="x"), language="en"),
    cap.SpeechChunk(audio=b"\x00\x00", sample_rate=22050),
]


@pytest.mark.parametrize(
    ("message", "union"),
    [
        *((r, cap.Request) for r in REQUESTS),
        *((r, cap.Result) for r in RESULTS),
        *((c, cap.Chunk) for c in CHUNKS),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, msgspec.Struct) else "",
)
def test_every_struct_crosses_to_the_worker_and_back_unchanged(message: msgspec.Struct, union: Any) -> None:
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(message), type=union) == message


def test_every_request_type_names_its_capability_and_every_capability_has_one() -> None:
    request_types = set(typing.get_args(cap.Request))
    assert set(cap.CAPABILITY_OF) == request_types
    assert {type(r) for r in REQUESTS} == request_types
    assert set(cap.CAPABILITY_OF.values()) == set(cap.Capability)
    assert cap.capability_of(cap.VoicesRequest()) is cap.Capability.SPEECH
    assert cap.capability_of(REQUESTS[0]) is cap.Capability.CHAT


def test_defaults_are_left_out_on_the_wire() -> None:
    request = cap.ChatRequest(messages=[cap.ChatMessage(role="user", content="hi")])
    assert msgspec.json.decode(msgspec.json.encode(request)) == {
        "type": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "sampling": {},  # a struct default is sent, empty
    }


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("plain", "plain"),
        (None, ""),
        ([], ""),
        (
            [
                cap.ContentPart(type="text", text="a"),
                cap.ContentPart(type="input_audio"),
                cap.ContentPart(type="text"),
            ],
            "a",
        ),
    ],
)
def test_a_message_text_joins_its_text_parts(content: Any, text: str) -> None:
    assert cap.ChatMessage(role="user", content=content).text() == text


def test_usage_totals_prompt_and_completion() -> None:
    assert cap.Usage(prompt_tokens=2, completion_tokens=3).total_tokens == 5


def test_each_capability_has_a_sample_request_but_detection(tmp_path: Path) -> None:
    for capability in cap.Capability:
        request = sample_request(capability, tmp_path)
        if capability is cap.Capability.DETECTION:
            assert request is None
            continue
        assert request is not None and cap.capability_of(request) is capability
    assert set(DEFAULT_REQUESTS) <= set(cap.Capability)
    assert (tmp_path / "tone.wav").read_bytes() == tone_wav()


def test_the_tones_are_a_second_of_16_khz_audio() -> None:
    assert len(tone_pcm()) == 16000 * 4  # float32
    with wave.open(io.BytesIO(tone_wav(seconds=0.5, rate=8000))) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate(), audio.getnframes()) == (
            1,
            2,
            8000,
            4000,
        )


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        (BackendOption(name="n", type="int"), 3, None),
        (BackendOption(name="n", type="int"), True, "expected int, got bool"),
        (BackendOption(name="n", type="int"), 1.5, "expected int, got float"),
        (BackendOption(name="n", type="float"), 2, None),
        (BackendOption(name="n", type="float"), False, "expected float, got bool"),
        (BackendOption(name="n", type="bool"), 1, "expected bool, got int"),
        (BackendOption(name="n", type="list"), [1], None),
        (BackendOption(name="n", type="dict"), [], "expected dict, got list"),
        (BackendOption(name="n"), "text", None),
        (BackendOption(name="n", choices=["a", "b"]), "c", "expected one of a, b, got 'c'"),
    ],
)
def test_backend_options_check_type_and_choice(
    option: BackendOption, value: Any, problem: str | None
) -> None:
    assert option.check(value) == problem


def test_a_backend_finds_its_options_and_their_defaults() -> None:
    backend = Backend(
        name="b",
        capabilities=[cap.Capability.CHAT],
        options=[BackendOption(name="a", default=1, type="int"), BackendOption(name="b")],
    )
    assert backend.option("a") == BackendOption(name="a", default=1, type="int")
    assert backend.option("zzz") is None
    assert backend.defaults() == {"a": 1}
