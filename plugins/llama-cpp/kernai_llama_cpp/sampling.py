"""One sequence's sampler chain, built on llama.cpp's sampler API.

The chain is the one ``Llama.generate`` builds, so a seed gives the text it gave before batching:
logit bias, then (in Python) a copy of the logits for logprobs and the grammar's mask, then the
repetition penalties, then greedy choice at temperature 0, else top-k, top-p, min-p, temperature
and a draw seeded per request.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from kernai_llama_cpp.lazy_grammar import TOKEN_DATA, LazyGrammar

PENALTY_LAST_N = 64
"""Tokens the repetition penalties look back over (llama-cpp-python's ``last_n_tokens_size``)."""


@dataclass(frozen=True)
class Settings:
    """Resolved sampling values (request, else model config, else llama.cpp's defaults)."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int


class SamplerChain:
    """Samples one sequence's next token from its row of the batch's logits.

    Used by the engine's scheduler thread only; ``logits`` holds the (biased) logits of the last
    step when ``capture_logits`` is set, for logprobs.
    """

    def __init__(
        self,
        vocab: llama_cpp.llama_vocab_p,
        n_vocab: int,
        settings: Settings,
        *,
        logit_bias: dict[int, float] | None = None,
        grammar: LazyGrammar | None = None,
        capture_logits: bool = False,
    ) -> None:
        self.settings = settings
        self.grammar = grammar
        self.capture_logits = capture_logits
        self.logits: np.ndarray | None = None
        self._vocab = vocab
        self._chain = _internals.LlamaSampler()
        if logit_bias:
            self._chain.add_logit_bias(n_vocab, logit_bias)
        if grammar is not None or capture_logits:
            self._chain.add_custom(self._inspect)
        self._chain.add_penalties(
            n_vocab=n_vocab,
            penalty_last_n=PENALTY_LAST_N,
            penalty_repeat=settings.repeat_penalty,
            penalty_freq=settings.frequency_penalty,
            penalty_present=settings.presence_penalty,
        )
        if settings.temperature == 0.0:
            self._chain.add_greedy()
        else:
            self._chain.add_top_k(settings.top_k)
            self._chain.add_top_p(settings.top_p, 1)
            self._chain.add_min_p(settings.min_p, 1)
            self._chain.add_temp(settings.temperature)
            self._chain.add_dist(settings.seed)

    def _inspect(self, candidates: Any) -> None:  # a llama_token_data_array pointer
        """Copy the logits (for logprobs) and mask what the grammar forbids; the candidates are
        still the whole vocabulary in id order here."""
        array = candidates.contents
        buffer = (llama_cpp.llama_token_data * array.size).from_address(ctypes.addressof(array.data.contents))
        scores = np.frombuffer(buffer, dtype=TOKEN_DATA)["logit"]
        if self.capture_logits:
            self.logits = scores.copy()
        if self.grammar is not None:
            self.grammar.constrain(scores)

    def sample(self, context: llama_cpp.llama_context_p, index: int) -> int:
        """The next token from output ``index`` of the last decode; the chain and grammar accept it
        (an end-of-generation token ends the parse instead)."""
        token = llama_cpp.llama_sampler_sample(self._chain.sampler, context, index)
        if self.grammar is not None and not llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self.grammar.accept(token)
        return int(token)

    def close(self) -> None:
        self._chain.close()
        if self.grammar is not None:
            self.grammar.close()
