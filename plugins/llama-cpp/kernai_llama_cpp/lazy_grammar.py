"""Grammar-constrained sampling that checks the likely tokens first.

llama.cpp's grammar sampler tests every token of the vocabulary against the grammar at every
step: with gemma's 262k-token vocabulary that costs more than the model itself. Like llama.cpp's
own server, this checks only the most likely candidates and falls back to the whole vocabulary
when none of them fits. It runs in a sequence's sampler chain ahead of the penalties and the
sampling proper, and leaves the tokens that the grammar allows (and no other) for them to choose from.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np

from kernai.errors import InvalidRequest

TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
"""``llama_token_data`` as numpy sees it."""
CANDIDATES = 64
"""How many of the most likely tokens are checked before the whole vocabulary is."""


class LazyGrammar:
    """A GBNF grammar's parse state for one generation: :meth:`constrain` the logits of each step,
    then :meth:`accept` the token sampled from them."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p, gbnf: str, param: str) -> None:
        self._sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self._sampler:
            raise InvalidRequest(
                "Invalid GBNF grammar (llama.cpp could not parse it, or it has no 'root' rule)", param=param
            )

    def constrain(self, scores: np.ndarray) -> None:
        """Set the logit of every token the grammar does not allow next to -inf (``scores`` is
        indexed by token id)."""
        count = min(CANDIDATES, scores.shape[0])
        likely = np.argpartition(-scores, count - 1)[:count]
        allowed = self._allowed(likely.astype(np.intc), scores[likely])
        if allowed.size == 0:
            allowed = self._allowed(np.arange(scores.shape[0], dtype=np.intc), scores)
        kept = scores[allowed]
        scores[:] = -np.inf
        scores[allowed] = kept

    def accept(self, token: int) -> None:
        """Advance the parse over the token just sampled."""
        llama_cpp.llama_sampler_accept(self._sampler, token)

    def _allowed(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        data = np.empty(ids.shape[0], dtype=TOKEN_DATA)
        data["id"], data["logit"], data["p"] = ids, logits, 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=ids.shape[0],
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(candidates))
        return data["id"][np.isfinite(data["logit"])]

    def close(self) -> None:
        if self._sampler:
            llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self) -> None:
        self.close()
