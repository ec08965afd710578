"""A loaded reranking model: its config read into a :class:`~kernai_rerank.engine.Reranker`, and rerank
requests checked and answered with it."""

from __future__ import annotations

from typing import Any

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest
from kernai_rerank.engine import Mode, Reranker, detect_mode

MAX_DOCUMENTS = 1000


class RerankModel(Model):
    """One GGUF reranker or embedding model, in the mode its config names (``auto``: from the GGUF)."""

    def __init__(self, config: ModelConfig) -> None:
        assert config.model_path is not None
        mode = config.options["mode"]
        try:
            resolved = detect_mode(config.model_path) if mode == "auto" else Mode(mode)
        except ValueError as exc:  # not a GGUF file
            raise InvalidRequest(f"{config.model_path} is not a GGUF model: {exc}") from None
        self.engine = Reranker(
            config.model_path,
            mode=resolved,
            context_size=config.context_size or 512,
            threads=config.threads,
            sigmoid=config.options["activation"] == "sigmoid",
        )

    def predict(self, request: cap.Request) -> cap.Result | None:
        if not isinstance(request, cap.RerankRequest):
            return None
        if not request.documents:
            raise InvalidRequest("'documents' must hold at least one document", param="documents")
        if len(request.documents) > MAX_DOCUMENTS:
            raise InvalidRequest(f"At most {MAX_DOCUMENTS} documents per request", param="documents")
        scores, tokens = self.engine.score(request.query, request.documents)
        return cap.RerankResult(
            results=[cap.RerankScore(index=i, relevance_score=s) for i, s in enumerate(scores)],
            usage=cap.Usage(prompt_tokens=tokens),
        )

    def status(self) -> dict[str, Any]:
        return {"mode": self.engine.mode.value, "context_size": self.engine.context_size}

    def close(self) -> None:
        self.engine.close()
