"""LocalAI's ``/v1/tokenize`` and ``/v1/detokenize`` (and their un-prefixed aliases)."""

from __future__ import annotations

from litestar import Controller, post

from kernai.auth.principal import Caller
from kernai.capabilities import DetokenizeRequest, DetokenizeResult, TokenizeRequest, TokenizeResult
from kernai.http.routes import RouteClass, route_opt
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
        self, data: TokenizeRequestWire, manager: ModelManager, caller: Caller
    ) -> TokenizeResponse:
        """LocalAI's tokenize: ``{"model", "content"}`` to ``{"tokens": [...]}``."""
        result = await manager.predict(
            data.model, TokenizeRequest(content=data.content, add_special=data.add_special), caller=caller
        )
        assert isinstance(result, TokenizeResult)
        return TokenizeResponse(tokens=result.tokens)

    @post(["/v1/detokenize", "/detokenize"], status_code=200)
    async def detokenize(
        self, data: DetokenizeRequestWire, manager: ModelManager, caller: Caller
    ) -> DetokenizeResponse:
        """Tokens back to text."""
        result = await manager.predict(data.model, DetokenizeRequest(tokens=data.tokens), caller=caller)
        assert isinstance(result, DetokenizeResult)
        return DetokenizeResponse(content=result.content)
