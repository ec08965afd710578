"""LocalLab's text API: ``POST /generate``, ``POST /chat``, ``POST /generate/batch``.

``model_id`` picks the model; without it the request goes to LocalLab's "current model": the most
recently used running model that can serve it, else the first configured one by name.
"""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, post
from litestar.response import Stream
from litestar.types import Scope

from kernai import capabilities as cap
from kernai.auth.principal import Caller
from kernai.errors import InvalidRequest
from kernai.http.inference import EventStream, prefetch, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ManagedModel, ModelManager
from kernai.surfaces.locallab import schemas as wire
from kernai.surfaces.locallab.errors import detail_shape
from kernai.surfaces.locallab.translate import (
    chat_lines,
    generate_events,
    generation_request,
    sampling_of,
    text_of,
)


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


def _model_for_generation(manager: ModelManager, caller: Caller, model_id: str | None) -> ManagedModel:
    if model_id:
        return manager.get(model_id, caller=caller)
    try:
        return current_model(manager, caller, None, cap.Capability.COMPLETION)
    except InvalidRequest:
        return current_model(manager, caller, None, cap.Capability.CHAT)


class LocalLabController(Controller):
    tags = ["locallab"]
    opt = route_opt(RouteClass.INFERENCE, errors=detail_shape)

    @post("/generate", summary="Generate text (LocalLab)", status_code=200)
    async def generate(
        self, data: wire.GenerateRequest, manager: ModelManager, scope: Scope
    ) -> Response[wire.GenerateResponse] | Stream:
        caller = caller_of(scope)
        model = _model_for_generation(manager, caller, data.model_id)
        request = generation_request(data.prompt, data, model, data.stream)
        if data.stream:
            chunks = await prefetch(manager.stream(model.name, request, caller=caller))
            return sse_response(generate_events(chunks))
        result = await manager.predict(model.name, request, caller=caller)
        return Response(wire.GenerateResponse(text=text_of(result), model=model.name))

    @post("/chat", summary="Chat (LocalLab)", status_code=200)
    async def chat(
        self, data: wire.ChatRequest, manager: ModelManager, scope: Scope
    ) -> Response[wire.ChatResponse] | Stream:
        caller = caller_of(scope)
        model = current_model(manager, caller, data.model_id, cap.Capability.CHAT)
        messages = [cap.ChatMessage(role="system", content=data.system_prompt)] if data.system_prompt else []
        messages += [cap.ChatMessage(role=m.role, content=m.content) for m in data.messages]
        request = cap.ChatRequest(messages=messages, sampling=sampling_of(data, model), stream=data.stream)
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
    async def batch(self, data: wire.BatchRequest, manager: ModelManager, scope: Scope) -> wire.BatchResponse:
        caller = caller_of(scope)
        model = _model_for_generation(manager, caller, data.model_id)
        requests = [generation_request(prompt, data, model, False) for prompt in data.prompts]
        results = await asyncio.gather(
            *(manager.predict(model.name, request, caller=caller) for request in requests),
            return_exceptions=True,
        )
        texts = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            texts.append(text_of(result))
        return wire.BatchResponse(responses=texts)
