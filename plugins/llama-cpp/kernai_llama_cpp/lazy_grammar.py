"""Grammar-constrained sampling that checks the likely tokens first.

llama.cpp's grammar sampler tests every token of the vocabulary against the grammar at every
step: with gemma's 262k-token vocabulary that costs more than the model itself. Like llama.cpp's
own server, this checks only the most likely candidates and falls back to the whole vocabulary
when none of them fits. It runs as a logits processor, ahead of the rest of the sampling chain,
and leaves the tokens that the grammar allows (and no other) for the chain to choose from.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np

from kernai.errors import InvalidRequest

_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
CANDIDATES = 64
"""How many of the most likely tokens are checked before the whole vocabulary is."""


class LazyGrammar:
    """A logits processor enforcing a GBNF grammar; one per generation (it holds the parse state)."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p, gbnf: str, param: str) -> None:
        self._sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self._sampler:
            raise InvalidRequest(
                "Invalid GBNF grammar (llama.cpp could not parse it, or it has no 'root' rule)", param=param
            )
        self._seen: int | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        self._accept_new(input_ids)
        count = min(CANDIDATES, scores.shape[0])
        likely = np.argpartition(-scores, count - 1)[:count]
        allowed = self._allowed(likely.astype(np.intc), scores[likely])
        if allowed.size == 0:
            allowed = self._allowed(np.arange(scores.shape[0], dtype=np.intc), scores)
        kept = scores[allowed]
        scores[:] = -np.inf
        scores[allowed] = kept
        return scores

    def _accept_new(self, input_ids: np.ndarray) -> None:
        """Advance the parse over the tokens sampled since the last step."""
        if self._seen is not None:
            for token in input_ids[self._seen :]:
                llama_cpp.llama_sampler_accept(self._sampler, int(token))
        self._seen = len(input_ids)

    def _allowed(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        data = np.empty(ids.shape[0], dtype=_TOKEN_DATA)
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
