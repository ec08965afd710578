"""The reference backend: the whole plugin contract in one short module (a declaration, a
:class:`kernai.Model` subclass, and the lifecycle hooks :func:`kernai.model_hooks` makes from it).

It "generates" by echoing its input one word at a time, which is enough to show every hook and
to give the kernel's tests a slow, streaming, crashable model without an engine.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# --8<-- [start:imports]
from kernai import Backend, BackendOption, Model, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest

# --8<-- [end:imports]

NAME = "reference"


# --8<-- [start:declare]
@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Echoes its input; a teaching example of the backend contract.",
            capabilities=[
                cap.Capability.CHAT,
                cap.Capability.COMPLETION,
                cap.Capability.EMBEDDINGS,
                cap.Capability.TOKENIZE,
                cap.Capability.DETOKENIZE,
            ],
            options=[
                BackendOption(
                    name="delay",
                    type="float",
                    default=0.0,
                    minimum=0,
                    description="Seconds per generated token.",
                ),
                BackendOption(
                    name="dimensions",
                    type="int",
                    default=16,
                    minimum=1,
                    maximum=65536,
                    description="Embedding size.",
                ),
                BackendOption(
                    name="fail_load", type="bool", default=False, description="Fail in load (for tests)."
                ),
            ],
            requires_model_file=False,
            parallel=True,
            selftest=f"{__name__}:selftest",
        )
    )


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: this backend needs no model file, so its smallest model is a bare config."""
    return SelfTest(config={"dimensions": 8})


# --8<-- [end:declare]


# --8<-- [start:model]
class EchoModel(Model):
    """A loaded model: settings from its config, and the counters its status reports.

    Its "engine" is the two methods at the end: ``words`` echoes, ``embed`` hashes bytes into a vector.
    """

    def __init__(self, config: ModelConfig) -> None:
        if config.options["fail_load"]:
            raise RuntimeError("fail_load is set")  # the client gets a 503 with this message
        self.delay = float(config.options["delay"])
        self.dimensions = int(config.options["dimensions"])
        self.context_size = config.context_size or 2048
        self.requests = 0
        self.tokens_generated = 0

    def predict(self, request: cap.Request) -> cap.Result | Iterator[cap.Chunk] | None:
        self.requests += 1
        match request:
            case cap.ChatRequest():
                return _chat(self, request)
            case cap.CompletionRequest():
                if len(request.prompt.encode()) > self.context_size:
                    raise InvalidRequest(f"Prompt exceeds the context size of {self.context_size} tokens")
                if request.stream:
                    return _stream(
                        self,
                        request.prompt,
                        request.sampling,
                        lambda piece, **kw: cap.CompletionChunk(text=piece or "", **kw),
                    )
                text, usage, reason = _generate(self, request.prompt, request.sampling)
                return cap.CompletionResult(text=text, usage=usage, finish_reason=reason)
            case cap.EmbeddingsRequest():
                tokens = sum(len(text.encode()) for text in request.input)
                return cap.EmbeddingsResult([self.embed(text) for text in request.input], cap.Usage(tokens))
            case cap.TokenizeRequest():
                return cap.TokenizeResult(list(request.content.encode()))
            case cap.DetokenizeRequest():
                if any(not 0 <= token < 256 for token in request.tokens):
                    raise InvalidRequest("Token ids must be between 0 and 255", param="tokens")
                return cap.DetokenizeResult(bytes(request.tokens).decode(errors="replace"))
        return None  # a request this backend does not serve: the client gets a 400 not_supported

    def status(self) -> dict[str, Any]:
        return {
            "requests_served": self.requests,
            "tokens_generated": self.tokens_generated,
            "context_size": self.context_size,
        }

    # --8<-- [end:model]

    def words(self, text: str, sampling: cap.Sampling) -> Iterator[str]:
        limit = sampling.max_tokens if sampling.max_tokens is not None else 16
        produced = ""
        for index, word in enumerate(text.split()):
            if index >= limit:
                return
            piece = word if index == 0 else " " + word
            if any(stop in produced + piece for stop in sampling.stop):
                return
            time.sleep(self.delay)
            produced += piece
            self.tokens_generated += 1
            yield piece

    def embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for byte in text.encode():
            vector[byte % self.dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


# --8<-- [start:hooks]
load, predict, status, shutdown = model_hooks(EchoModel)
# --8<-- [end:hooks]


def _generate(model: EchoModel, text: str, sampling: cap.Sampling) -> tuple[str, cap.Usage, str]:
    pieces = list(model.words(text, sampling))
    limit = sampling.max_tokens if sampling.max_tokens is not None else 16
    reason = "length" if len(pieces) >= limit and len(text.split()) > limit else "stop"
    return "".join(pieces), cap.Usage(len(text.encode()), len(pieces)), reason


def _stop_hit(text: str, produced: int, sampling: cap.Sampling) -> str | None:
    """The stop sequence that ended an echo after ``produced`` words, if one did."""
    words = text.split()
    if produced >= len(words) or produced == sampling.max_tokens:
        return None
    candidate = " ".join(words[: produced + 1])
    return next((stop for stop in sampling.stop if stop in candidate), None)


def _stream(model: EchoModel, text: str, sampling: cap.Sampling, chunk: Callable[..., Any]) -> Iterator[Any]:
    count = 0
    for piece in model.words(text, sampling):
        count += 1
        yield chunk(piece)
    yield chunk(None, finish_reason="stop", usage=cap.Usage(len(text.encode()), count))


def _forced_tool_call(request: cap.ChatRequest, text: str) -> cap.ToolCall | None:
    """When ``tool_choice`` forces a tool, "call" it with the echoed text as ``{"text": ...}``."""
    if not request.tools or request.tool_choice in (None, "auto", "none"):
        return None
    choice = request.tool_choice
    name = choice["function"]["name"] if isinstance(choice, dict) else request.tools[0].function.name
    return cap.ToolCall(id="call_echo", function=cap.FunctionCall(name, json.dumps({"text": text})))


def _chat(model: EchoModel, request: cap.ChatRequest) -> Any:
    turns = [m for m in request.messages if m.role in ("user", "tool")]
    text = turns[-1].text() if turns else ""
    usage = cap.Usage(len(text.encode()))
    if (call := _forced_tool_call(request, text)) is not None:
        if request.stream:
            delta = cap.ToolCallDelta(index=0, id=call.id, function=call.function)
            return iter(
                [cap.ChatChunk(tool_calls=[delta]), cap.ChatChunk(finish_reason="tool_calls", usage=usage)]
            )
        return cap.ChatResult(tool_calls=[call], finish_reason="tool_calls", usage=usage)
    if request.stream:
        return _stream(model, text, request.sampling, lambda piece, **kw: cap.ChatChunk(content=piece, **kw))
    content, usage, reason = _generate(model, text, request.sampling)
    stop = _stop_hit(text, usage.completion_tokens, request.sampling)
    return cap.ChatResult(content=content, usage=usage, finish_reason=reason, stop_sequence=stop)
