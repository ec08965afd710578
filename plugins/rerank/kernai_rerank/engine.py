"""Relevance scores for (query, document) pairs with llama.cpp: rank pooling or embedding cosine."""

from __future__ import annotations

import math
import threading
from enum import StrEnum
from pathlib import Path

import gguf
import llama_cpp
import numpy as np


class Mode(StrEnum):
    CROSS_ENCODER = "cross-encoder"
    EMBEDDING = "embedding"


def detect_mode(path: str | Path) -> Mode:
    """A GGUF whose pooling type is RANK is a cross-encoder (llama.cpp's convention); others embed."""
    reader = gguf.GGUFReader(path)
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        return Mode.EMBEDDING
    arch = arch_field.contents()
    pooling = reader.get_field(gguf.Keys.LLM.POOLING_TYPE.format(arch=arch))
    if pooling is not None and int(pooling.contents()) == gguf.PoolingType.RANK:
        return Mode.CROSS_ENCODER
    return Mode.EMBEDDING


class Reranker:
    """One GGUF model in llama.cpp, scoring documents against a query.

    A cross-encoder reads each pair as ``[BOS] query [EOS] [SEP] document [EOS]`` (each special
    token only where the vocab asks for it; a ``rerank`` chat template in the GGUF wins), the same
    input llama.cpp's server builds, and reports its classification head's first output. An
    embedding model embeds the query and the documents and reports their cosine similarity.
    """

    def __init__(
        self,
        path: str,
        *,
        mode: Mode,
        context_size: int = 512,
        threads: int | None = None,
        sigmoid: bool = True,
    ) -> None:
        self.mode = mode
        self.sigmoid = sigmoid
        pooling = (
            llama_cpp.LLAMA_POOLING_TYPE_RANK
            if mode is Mode.CROSS_ENCODER
            else llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
        )
        # A non-causal encoder needs each sequence whole in one micro-batch: batch = ubatch = context.
        self.llm = llama_cpp.Llama(
            path,
            embedding=True,
            pooling_type=pooling,
            n_ctx=context_size,
            n_batch=context_size,
            n_ubatch=context_size,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.context_size = self.llm.n_ctx()
        self.lock = threading.Lock()
        vocab = self.llm._model.vocab
        self.bos, self.eos, self.sep = (
            llama_cpp.llama_vocab_bos(vocab),
            llama_cpp.llama_vocab_eos(vocab),
            llama_cpp.llama_vocab_sep(vocab),
        )
        self.add_bos = llama_cpp.llama_vocab_get_add_bos(vocab)
        self.add_eos = llama_cpp.llama_vocab_get_add_eos(vocab)
        self.add_sep = llama_cpp.llama_vocab_get_add_sep(vocab)
        template = llama_cpp.llama_model_chat_template(self.llm._model.model, b"rerank")
        self.template = template.decode() if template else None

    def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        """Scores in document order, and the number of tokens read."""
        with self.lock:
            if self.mode is Mode.CROSS_ENCODER:
                return self._rank(query, documents)
            return self._cosine(query, documents)

    # --- cross-encoder -------------------------------------------------------------------------

    def _tokens(self, text: str, *, special: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=special)

    def pair_tokens(self, query: str, document: str) -> list[int]:
        """The model's input for one pair, the document cut so that the pair fits the context."""
        if self.template is not None:
            text = self.template.replace("{query}", query).replace("{document}", document)
            return self._tokens(text, special=True)[: self.context_size]
        head = [self.bos] if self.add_bos else []
        head += self._tokens(query)
        head += [self.eos] if self.add_eos else []
        head += [self.sep] if self.add_sep else []
        tail = [self.eos] if self.add_eos else []
        room = self.context_size - len(head) - len(tail)
        if room < 1:
            head = head[: self.context_size - len(tail) - 1]
            room = 1
        return head + self._tokens(document)[:room] + tail

    def _rank(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        pairs = [self.pair_tokens(query, document) for document in documents]
        scores: list[float] = []
        batch: list[list[int]] = []
        max_sequences = self.llm.context_params.n_seq_max
        for tokens in pairs:
            if batch and (
                sum(map(len, batch)) + len(tokens) > self.context_size or len(batch) >= max_sequences
            ):
                scores += self._decode(batch)
                batch = []
            batch.append(tokens)
        if batch:
            scores += self._decode(batch)
        return scores, sum(map(len, pairs))

    def _decode(self, sequences: list[list[int]]) -> list[float]:
        ctx = self.llm._ctx
        llama_batch = self.llm._batch
        llama_batch.reset()
        for seq_id, tokens in enumerate(sequences):
            llama_batch.add_sequence(tokens, seq_id, True)
        ctx.kv_cache_clear()
        ctx.decode(llama_batch)
        llama_batch.reset()
        raw = [llama_cpp.llama_get_embeddings_seq(ctx.ctx, seq_id)[0] for seq_id in range(len(sequences))]
        return [1.0 / (1.0 + math.exp(-value)) if self.sigmoid else float(value) for value in raw]

    # --- embedding model -----------------------------------------------------------------------

    def _cosine(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        vectors, tokens = self.llm.embed([query, *documents], normalize=True, return_count=True)
        matrix = np.asarray(vectors, dtype=np.float32)
        return [float(v) for v in matrix[1:] @ matrix[0]], int(tokens)

    def close(self) -> None:
        self.llm.close()
