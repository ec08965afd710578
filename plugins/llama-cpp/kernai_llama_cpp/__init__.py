"""kernai plugin: GGUF language models on llama.cpp, as the ``llama-cpp`` backend.

Chat (with tools, JSON output and GBNF grammars), completion (with echo and fill-in-the-middle),
embeddings, tokenize and detokenize. The engine is imported in ``load``, inside the model's worker
process, never in the server process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernai import Backend, SelfTest, hookimpl
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai_llama_cpp.options import BACKEND, NAME


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(BACKEND)


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: a tiny llama with Q4_0/Q8_0 weights, so its chat runs the quantized kernels."""
    from kernai_llama_cpp.testing import write_tiny_llama

    write_tiny_llama(folder / "tiny-q4_0.gguf", quantized=True)
    return SelfTest(config={"parameters": {"model": "tiny-q4_0.gguf"}, "context_size": 256})


@hookimpl
def load(backend: str, config: ModelConfig) -> Any:
    if backend != NAME:
        return None
    from kernai_llama_cpp.model import LlamaModel

    return LlamaModel(config)


@hookimpl
def predict(backend: str, model: Any, request: cap.Request) -> Any:
    if backend != NAME:
        return None
    from kernai_llama_cpp import handlers

    model.requests += 1
    match request:
        case cap.ChatRequest(stream=True):
            return handlers.chat_stream(model, request)
        case cap.ChatRequest():
            return handlers.chat(model, request)
        case cap.CompletionRequest(stream=True):
            return handlers.completion_stream(model, request)
        case cap.CompletionRequest():
            return handlers.completion(model, request)
        case cap.EmbeddingsRequest():
            return handlers.embeddings(model, request)
        case cap.TokenizeRequest():
            return handlers.tokenize(model, request)
        case cap.DetokenizeRequest():
            return handlers.detokenize(model, request)
    return None


@hookimpl
def status(backend: str, model: Any) -> dict[str, Any] | None:
    return model.status() if backend == NAME else None


@hookimpl
def shutdown(backend: str, model: Any) -> bool | None:
    if backend != NAME:
        return None
    model.close()
    return True
