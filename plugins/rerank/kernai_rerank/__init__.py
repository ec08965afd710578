"""The ``rerank`` backend: relevance scores for documents against a query, with llama.cpp.

Two kinds of GGUF models serve it: cross-encoder rerankers (bge-reranker and the like, whose GGUF
declares RANK pooling) score each (query, document) pair with their classification head; embedding
models score documents by the cosine similarity of their embeddings to the query's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernai import Backend, BackendOption, SelfTest, hookimpl, model_hooks
from kernai import capabilities as cap

NAME = "rerank"


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


load, predict, status, shutdown = model_hooks("kernai_rerank.model:RerankModel")
