"""LocalAI's ``GET /tokenMetrics`` and ``/v1/tokenMetrics``: per model, the token counts, tokens per
second and time to first token of its last request and of the ones in flight, with running totals."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager
from kernai.manager.token_ledger import ModelTokens
from kernai.surfaces.localai.system import model_from


class TokenMetricsController(Controller):
    tags = ["localai"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @get(
        ["/tokenMetrics", "/v1/tokenMetrics"],
        summary="Token metrics of the last and active requests, per model",
    )
    async def token_metrics(
        self, request: Request[Any, Any, Any], manager: ModelManager, model: str | None = None
    ) -> dict[str, ModelTokens]:
        """Every model's, or one model's (``?model=`` or LocalAI's ``{"model": ...}`` body)."""
        ledger = manager.recorder.tokens
        if model or (await request.body()).strip():
            name = await model_from(request, model)
            manager.get(name)
            return {name: ledger.of(name)}
        return {name: ledger.of(name) for name in sorted(manager.models)}
