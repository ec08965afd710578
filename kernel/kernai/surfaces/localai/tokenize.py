"""LocalAI's ``/v1/tokenize`` and ``/v1/detokenize`` (and their un-prefixed aliases)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.types import Scope

from kernai.capabilities import DetokenizeRequest, DetokenizeResult, TokenizeRequest, TokenizeResult
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.surfaces.localai.schemas import (
    DetokenizeRequestWire,
    DetokenizeResponse,
    TokenizeRequestWire,
    TokenizeResponse,
)


class TokenizeController(Controller):
    tags = ["localai"]
    opt = route_opt(RouteClass.INFERENCE)

    @post(["/v1/tokenize", "/tokenize"], status_code=200)
    async def tokenize(
        self, data: TokenizeRequestWire, manager: ModelManager, scope: Scope
    ) -> TokenizeResponse:
        """LocalAI's tokenize: ``{"model", "content"}`` to ``{"tokens": [...]}``."""
        caller = caller_of(scope)
        result = await manager.predict(
            data.model, TokenizeRequest(content=data.content, add_special=data.add_special), caller=caller
        )
        assert isinstance(result, TokenizeResult)
        return TokenizeResponse(tokens=result.tokens)

    @post(["/v1/detokenize", "/detokenize"], status_code=200)
    async def detokenize(
        self, data: DetokenizeRequestWire, manager: ModelManager, scope: Scope
    ) -> DetokenizeResponse:
        """Tokens back to text."""
        caller = caller_of(scope)
        result = await manager.predict(data.model, DetokenizeRequest(tokens=data.tokens), caller=caller)
        assert isinstance(result, DetokenizeResult)
        return DetokenizeResponse(content=result.content)
