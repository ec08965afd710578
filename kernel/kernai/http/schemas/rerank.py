"""Rerank wire formats (Jina / Cohere shape, as LocalAI serves them on ``/v1/rerank``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kernai.http.schemas import PositiveInt

ModelName = Annotated[str, Meta(min_length=1)]


class RerankDocumentWire(Struct, kw_only=True):
    """A document given as an object, as Cohere's v1 API and Jina also accept."""

    text: str


class RerankRequestWire(Struct, kw_only=True, omit_defaults=True):
    model: ModelName
    query: Annotated[str, Meta(min_length=1)]
    documents: Annotated[list[str | RerankDocumentWire], Meta(min_length=1)]
    top_n: PositiveInt | None = None
    return_documents: bool = True


class RerankDocumentText(Struct):
    text: str


class RerankResultWire(Struct, kw_only=True, omit_defaults=True):
    index: int
    relevance_score: float
    document: RerankDocumentText | None = None


class RerankUsage(Struct):
    prompt_tokens: int
    total_tokens: int


class RerankResponse(Struct, kw_only=True):
    model: str
    results: list[RerankResultWire]
    usage: RerankUsage
