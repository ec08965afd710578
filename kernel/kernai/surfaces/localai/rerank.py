"""``POST /v1/rerank``: documents ordered by their relevance to a query (Jina / Cohere / LocalAI)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.types import Scope

from kernai.capabilities import RerankRequest, RerankResult
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.surfaces.localai.schemas import (
    RerankDocumentText,
    RerankRequestWire,
    RerankResponse,
    RerankResultWire,
    RerankUsage,
)


class RerankController(Controller):
    """Scores come from the model's backend in document order; sorting and ``top_n`` happen here."""

    opt = route_opt(RouteClass.INFERENCE)

    @post(["/v1/rerank", "/rerank", "/v1/reranking", "/reranking"], status_code=200)
    async def rerank(self, data: RerankRequestWire, manager: ModelManager, scope: Scope) -> RerankResponse:
        caller = caller_of(scope)
        texts = [d if isinstance(d, str) else d.text for d in data.documents]
        result = await manager.predict(
            data.model, RerankRequest(query=data.query, documents=texts, top_n=data.top_n), caller=caller
        )
        assert isinstance(result, RerankResult)
        ranked = sorted(result.results, key=lambda score: (-score.relevance_score, score.index))
        if data.top_n is not None:
            ranked = ranked[: data.top_n]
        tokens = result.usage.prompt_tokens
        return RerankResponse(
            model=data.model,
            results=[
                RerankResultWire(
                    index=s.index,
                    relevance_score=s.relevance_score,
                    document=RerankDocumentText(texts[s.index]) if data.return_documents else None,
                )
                for s in ranked
            ],
            usage=RerankUsage(prompt_tokens=tokens, total_tokens=tokens),
        )
