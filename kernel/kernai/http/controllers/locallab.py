"""LocalLab's text API: ``POST /generate``, ``POST /chat``, ``POST /generate/batch``.

``model_id`` picks the model; without it the request goes to LocalLab's "current model": the most
recently used running model that can serve it, else the first configured one by name. ``/generate``
is a plain completion when the backend has one (a chat turn otherwise, or when ``system_prompt`` is
set). Streams follow LocalLab: ``/generate`` sends ``data: <text>`` events (newlines escaped as
``\\n``) ending with ``data: [DONE]``; ``/chat`` sends one JSON chunk per line, as LocalLab's client
reads it, ending with the line ``"[DONE]"``. Errors are ``{"detail": "..."}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import msgspec
from litestar import Controller, Response, post
from litestar.response import Stream

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest, KernaiError
from kernai.http.errors import detail_shape
from kernai.http.inference import EventStream, prefetch, sampling_with_defaults, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.schemas import locallab as wire
from kernai.manager import ManagedModel, ModelManager

_json = msgspec.json.Encoder()


def current_model(
    manager: ModelManager, caller: Caller, model_id: str | None, capability: cap.Capability
) -> ManagedModel:
    """The model named by ``model_id``, else the one LocalLab would call current."""
    if model_id:
        return manager.get(model_id, caller=caller)
    able = [
        model for model in manager.models.values() if model.supports(capability) and not model.config.disabled
    ]
    running = [model for model in able if model.running]
    if running:
        return max(running, key=lambda model: model.last_used)
    if able:
        return min(able, key=lambda model: model.name)
    raise InvalidRequest(f"No model is currently loaded that supports {capability.value}; pass model_id")


def _sampling(data: wire.SamplingFields, model: ManagedModel) -> cap.Sampling:
    return sampling_with_defaults(
        model.config.parameters,
        max_tokens=data.limit,
        temperature=data.temperature,
        top_p=data.top_p,
        top_k=data.top_k,
        repeat_penalty=data.repetition_penalty,
    )


def _generation_request(
    prompt: str, data: wire.SamplingFields, model: ManagedModel, stream: bool
) -> cap.ChatRequest | cap.CompletionRequest:
    sampling = _sampling(data, model)
    if model.supports(cap.Capability.COMPLETION) and data.system_prompt is None:
        return cap.CompletionRequest(prompt=prompt, sampling=sampling, stream=stream)
    messages = [cap.ChatMessage(role="system", content=data.system_prompt)] if data.system_prompt else []
    messages.append(cap.ChatMessage(role="user", content=prompt))
    return cap.ChatRequest(messages=messages, sampling=sampling, stream=stream)


def _text(result: cap.Result) -> str:
    if isinstance(result, cap.CompletionResult):
        return result.text
    assert isinstance(result, cap.ChatResult)
    return result.content or ""


def _chunk_text(chunk: cap.Chunk) -> str:
    if isinstance(chunk, cap.CompletionChunk):
        return chunk.text
    assert isinstance(chunk, cap.ChatChunk)
    return chunk.content or ""


def _model_for_generation(manager: ModelManager, caller: Caller, model_id: str | None) -> ManagedModel:
    if model_id:
        return manager.get(model_id, caller=caller)
    try:
        return current_model(manager, caller, None, cap.Capability.COMPLETION)
    except InvalidRequest:
        return current_model(manager, caller, None, cap.Capability.CHAT)


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


class LocalLabController(Controller):
    tags = ["locallab"]
    opt = route_opt(RouteClass.INFERENCE, errors=detail_shape)

    @post("/generate", summary="Generate text (LocalLab)", status_code=200)
    async def generate(
        self, data: wire.GenerateRequest, manager: ModelManager, caller: Caller
    ) -> Response[wire.GenerateResponse] | Stream:
        model = _model_for_generation(manager, caller, data.model_id)
        request = _generation_request(data.prompt, data, model, data.stream)
        if data.stream:
            chunks = await prefetch(manager.stream(model.name, request, caller=caller))
            return sse_response(generate_events(chunks))
        result = await manager.predict(model.name, request, caller=caller)
        return Response(wire.GenerateResponse(text=_text(result), model=model.name))

    @post("/chat", summary="Chat (LocalLab)", status_code=200)
    async def chat(
        self, data: wire.ChatRequest, manager: ModelManager, caller: Caller
    ) -> Response[wire.ChatResponse] | Stream:
        model = current_model(manager, caller, data.model_id, cap.Capability.CHAT)
        messages = [cap.ChatMessage(role="system", content=data.system_prompt)] if data.system_prompt else []
        messages += [cap.ChatMessage(role=m.role, content=m.content) for m in data.messages]
        request = cap.ChatRequest(messages=messages, sampling=_sampling(data, model), stream=data.stream)
        if data.stream:
            chunks = await prefetch(manager.stream(model.name, request, caller=caller))
            return EventStream(chat_lines(chunks, model.name), media_type="application/x-ndjson")
        result = await manager.predict(model.name, request, caller=caller)
        assert isinstance(result, cap.ChatResult)
        choice = wire.ChatChoice(
            message=wire.ChatMessage(role="assistant", content=result.content or ""),
            index=0,
            finish_reason=result.finish_reason,
        )
        usage = wire.Usage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            total_tokens=result.usage.total_tokens,
        )
        return Response(wire.ChatResponse(choices=[choice], model=model.name, usage=usage))

    @post("/generate/batch", summary="Generate text for several prompts (LocalLab)", status_code=200)
    async def batch(
        self, data: wire.BatchRequest, manager: ModelManager, caller: Caller
    ) -> wire.BatchResponse:
        model = _model_for_generation(manager, caller, data.model_id)
        requests = [_generation_request(prompt, data, model, False) for prompt in data.prompts]
        results = await asyncio.gather(
            *(manager.predict(model.name, request, caller=caller) for request in requests),
            return_exceptions=True,
        )
        texts = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            texts.append(_text(result))
        return wire.BatchResponse(responses=texts)
