"""LocalLab's requests to the capability structs and results and chunks back: ``/generate`` is a plain
completion when the backend has one (a chat turn otherwise, or when ``system_prompt`` is set); its
stream is ``data: <text>`` events (newlines escaped as ``\\n``) ending with ``data: [DONE]``, and
``/chat``'s one JSON chunk per line, as LocalLab's client reads it, ending with the line ``"[DONE]"``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import msgspec

from kernai import capabilities as cap
from kernai.errors import KernaiError
from kernai.http.inference import sampling_with_defaults
from kernai.manager import ManagedModel
from kernai.surfaces.locallab import schemas as wire

_json = msgspec.json.Encoder()


def sampling_of(data: wire.SamplingFields, model: ManagedModel) -> cap.Sampling:
    return sampling_with_defaults(
        model.config.parameters,
        max_tokens=data.limit,
        temperature=data.temperature,
        top_p=data.top_p,
        top_k=data.top_k,
        repeat_penalty=data.repetition_penalty,
    )


def generation_request(
    prompt: str, data: wire.SamplingFields, model: ManagedModel, stream: bool
) -> cap.ChatRequest | cap.CompletionRequest:
    sampling = sampling_of(data, model)
    if model.supports(cap.Capability.COMPLETION) and data.system_prompt is None:
        return cap.CompletionRequest(prompt=prompt, sampling=sampling, stream=stream)
    messages = [cap.ChatMessage(role="system", content=data.system_prompt)] if data.system_prompt else []
    messages.append(cap.ChatMessage(role="user", content=prompt))
    return cap.ChatRequest(messages=messages, sampling=sampling, stream=stream)


def text_of(result: cap.Result) -> str:
    if isinstance(result, cap.CompletionResult):
        return result.text
    assert isinstance(result, cap.ChatResult)
    return result.content or ""


def _chunk_text(chunk: cap.Chunk) -> str:
    if isinstance(chunk, cap.CompletionChunk):
        return chunk.text
    assert isinstance(chunk, cap.ChatChunk)
    return chunk.content or ""


async def generate_events(chunks: AsyncGenerator[cap.Chunk, None]) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in chunks:
            if text := _chunk_text(chunk):
                yield b"data: " + text.replace("\n", "\\n").encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    except KernaiError as exc:
        yield b"data: [ERROR] " + exc.message.replace("\n", " ").encode() + b"\n\n"
    finally:
        await chunks.aclose()


async def chat_lines(chunks: AsyncGenerator[cap.Chunk, None], model: str) -> AsyncGenerator[bytes, None]:
    role: str | None = "assistant"
    try:
        async for chunk in chunks:
            assert isinstance(chunk, cap.ChatChunk)
            if chunk.content or chunk.finish_reason:
                choice = wire.ChatChunkChoice(
                    delta=wire.Delta(content=chunk.content or "", role=role),
                    index=0,
                    finish_reason=chunk.finish_reason,
                )
                role = None
                yield _json.encode(wire.ChatChunk(choices=[choice], model=model)) + b"\n"
        yield b'"[DONE]"\n'
    except KernaiError as exc:
        yield _json.encode({"error": exc.message}) + b"\n"
    finally:
        await chunks.aclose()
