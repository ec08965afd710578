"""``POST /v1/messages``, plain and streaming, with tools."""

from __future__ import annotations

from litestar import Controller, Response, post
from litestar.response import Stream
from litestar.types import Scope

from kernai import capabilities as cap
from kernai.http.inference import prefetch, sse_response
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.surfaces.anthropic import schemas as wire
from kernai.surfaces.anthropic.errors import anthropic_shape
from kernai.surfaces.anthropic.translate import chat_request, error_event, message_events, message_of


class AnthropicController(Controller):
    tags = ["anthropic"]
    opt = route_opt(RouteClass.INFERENCE, errors=anthropic_shape)

    @post("/v1/messages", summary="Create a message (Anthropic Messages API)", status_code=200)
    async def create_message(
        self, data: wire.MessagesRequest, manager: ModelManager, scope: Scope
    ) -> Response[wire.Message] | Stream:
        caller = caller_of(scope)
        model = manager.get(data.model, caller=caller)
        request = chat_request(data, model.config.parameters)
        if data.stream:
            chunks = await prefetch(manager.stream(data.model, request, caller=caller))
            return sse_response(message_events(chunks, data.model), error_event)
        result = await manager.predict(data.model, request, caller=caller)
        assert isinstance(result, cap.ChatResult)
        return Response(message_of(result, data.model))
