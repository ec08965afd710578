"""The ``rerank`` backend: relevance scores for documents against a query, with llama.cpp.

Two kinds of GGUF models serve it: cross-encoder rerankers (bge-reranker and the like, whose GGUF
declares RANK pooling) score each (query, document) pair with their classification head; embedding
models score documents by the cosine similarity of their embeddings to the query's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernai import Backend, BackendOption, SelfTest, hookimpl
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest

NAME = "rerank"
MAX_DOCUMENTS = 1000


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(
        Backend(
            name=NAME,
            description="Reranking with llama.cpp: GGUF cross-encoders (rank pooling) or embedding models "
            "(cosine).",
            capabilities=[cap.Capability.RERANK],
            options=[
                BackendOption(
                    name="mode",
                    type="str",
                    default="auto",
                    choices=["auto", "cross-encoder", "embedding"],
                    description="How to score: 'auto' picks cross-encoder for a GGUF with RANK pooling.",
                ),
                BackendOption(
                    name="activation",
                    type="str",
                    default="sigmoid",
                    choices=["sigmoid", "none"],
                    description="Cross-encoders: map the head's logit to 0..1 with a sigmoid, or not.",
                ),
            ],
            selftest=f"{__name__}:selftest",
        )
    )


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: a tiny random-weight BERT cross-encoder GGUF."""
    from kernai_rerank.testing import write_tiny_bert

    write_tiny_bert(folder / "tiny-reranker.gguf", cross_encoder=True)
    return SelfTest(config={"parameters": {"model": "tiny-reranker.gguf"}, "threads": 1})


@hookimpl
def load(backend: str, config: ModelConfig) -> Any:
    from kernai_rerank.engine import Mode, Reranker, detect_mode

    assert config.model_path is not None
    mode = config.options["mode"]
    try:
        resolved = detect_mode(config.model_path) if mode == "auto" else Mode(mode)
    except ValueError as exc:  # not a GGUF file
        raise InvalidRequest(f"{config.model_path} is not a GGUF model: {exc}") from None
    return Reranker(
        config.model_path,
        mode=resolved,
        context_size=config.context_size or 512,
        threads=config.threads,
        sigmoid=config.options["activation"] == "sigmoid",
    )


@hookimpl
def predict(backend: str, model: Any, request: cap.Request) -> Any:
    if not isinstance(request, cap.RerankRequest):
        return None
    if not request.documents:
        raise InvalidRequest("'documents' must hold at least one document", param="documents")
    if len(request.documents) > MAX_DOCUMENTS:
        raise InvalidRequest(f"At most {MAX_DOCUMENTS} documents per request", param="documents")
    scores, tokens = model.score(request.query, request.documents)
    return cap.RerankResult(
        results=[cap.RerankScore(index=i, relevance_score=s) for i, s in enumerate(scores)],
        usage=cap.Usage(prompt_tokens=tokens),
    )


@hookimpl
def status(backend: str, model: Any) -> dict[str, Any]:
    return {"mode": model.mode.value, "context_size": model.context_size}


@hookimpl
def shutdown(backend: str, model: Any) -> bool:
    model.close()
    return True
