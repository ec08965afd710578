"""One generation as a request sees it: sampling settings in, text pieces (with optional logprobs) out.

The tokens come from the model's :class:`~kernai_llama_cpp.engine.BatchEngine`, which samples them
with the chain of :mod:`kernai_llama_cpp.sampling` beside other requests' sequences; here they are
decoded incrementally to text, cut at stop sequences, and given logprobs. Closing the iterator
takes the sequence out of the engine at once.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernai import capabilities as cap
from kernai.errors import InvalidRequest
from kernai_llama_cpp.engine import Sequence
from kernai_llama_cpp.lazy_grammar import LazyGrammar
from kernai_llama_cpp.model import LlamaModel
from kernai_llama_cpp.sampling import SamplerChain, Settings

DEFAULTS = {
    "temperature": 0.8,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


@dataclass
class Piece:
    """Text produced by one step (may be empty while a stop sequence is undecided) and the
    logprobs of the tokens it covers."""

    text: str
    logprobs: list[cap.TokenLogprob] = field(default_factory=list)


@dataclass
class Generation:
    """One generation's settings; iterate :meth:`run` for pieces, then read the outcome fields."""

    model: LlamaModel
    prompt_tokens: list[int]
    sampling: cap.Sampling
    param: str = "messages"
    default_max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    """GBNF text, already checked."""
    top_logprobs: int | None = None
    finish_reason: str = "length"
    completion_tokens: int = 0
    stop_sequence: str | None = None
    """The entry of ``stop`` that ended generation, if one did."""

    cached_tokens: int = 0
    """Prompt tokens the engine's prompt cache held, so that they were not computed again."""

    def usage(self) -> cap.Usage:
        """The token counts so far."""
        return cap.Usage(len(self.prompt_tokens), self.completion_tokens, self.cached_tokens)

    def check_context(self) -> int:
        """The number of tokens left for the output; a 400 naming the limit when the prompt does not fit."""
        self.model.generating_engine()
        context = self.model.slot_context
        if not self.prompt_tokens:
            raise InvalidRequest("The prompt is empty", param=self.param)
        if len(self.prompt_tokens) >= context:
            total = self.model.context_size
            shared = f" (a slot's share of context_size {total})" if total != context else ""
            raise InvalidRequest(
                f"This model's maximum context length is {context} tokens{shared}, but the prompt is "
                f"{len(self.prompt_tokens)} tokens long. Shorten the prompt or raise context_size.",
                param=self.param,
                code="context_length_exceeded",
            )
        return context - len(self.prompt_tokens)

    def _sequence(self, max_tokens: int) -> Sequence:
        """The engine's sequence for this generation, with its own sampler chain."""
        values = {
            key: getattr(self.sampling, key) if getattr(self.sampling, key) is not None else value
            for key, value in DEFAULTS.items()
        }
        seed = self.sampling.seed if self.sampling.seed is not None else random.getrandbits(31)
        settings = Settings(
            temperature=float(values["temperature"]),
            top_p=float(values["top_p"]),
            top_k=int(values["top_k"]),
            min_p=float(values["min_p"]),
            repeat_penalty=float(values["repeat_penalty"]),
            presence_penalty=float(values["presence_penalty"]),
            frequency_penalty=float(values["frequency_penalty"]),
            seed=seed,
        )
        vocab = self.model.llama._model.vocab
        bias = _logit_bias(self.model, self.sampling.logit_bias) if self.sampling.logit_bias else None
        grammar = LazyGrammar(vocab, self.grammar, "grammar") if self.grammar is not None else None
        sampler = SamplerChain(
            vocab,
            self.model.n_vocab,
            settings,
            logit_bias=bias,
            grammar=grammar,
            capture_logits=self.top_logprobs is not None,
        )
        params: dict[str, Any] = {
            **vars(settings),
            "n_predict": max_tokens,
            "stop": self.stop,
            "grammar": self.grammar or "",
            "n_probs": self.top_logprobs or 0,
            "logit_bias": [[token, value] for token, value in (bias or {}).items()],
        }
        return Sequence(self.prompt_tokens, sampler, max_tokens, params)

    def run(self) -> Iterator[Piece]:
        """Generate, yielding pieces; closing the iterator stops generation at once."""
        budget = self.check_context()
        wanted = self.sampling.max_tokens or self.default_max_tokens
        max_tokens = min(wanted, budget) if wanted else budget
        engine = self.model.generating_engine()
        sequence = self._sequence(max_tokens)
        engine.submit(sequence)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = [s for s in self.stop if s]
        held = ""
        try:
            for step in sequence.steps():
                self.cached_tokens = sequence.cached_tokens
                self.completion_tokens += 1
                piece = self.model.piece(step.token)
                logprobs = [self._logprob(step.token, piece, step.logits)] if step.logits is not None else []
                text = held + decoder.decode(piece)
                if stops and (found := _first_stop(text, stops)) is not None:
                    self.finish_reason = "stop"
                    cut, self.stop_sequence = found
                    yield Piece(text[:cut], logprobs)
                    return
                keep = _stop_prefix_length(text, stops) if stops else 0
                held = text[len(text) - keep :] if keep else ""
                yield Piece(text[: len(text) - keep], logprobs)
            self.cached_tokens = sequence.cached_tokens
            self.finish_reason = sequence.finish_reason or "length"
            tail = held + decoder.decode(b"", final=True)
            if tail:
                yield Piece(tail)
        finally:
            engine.cancel(sequence)

    def _logprob(self, token: int, piece: bytes, logits: np.ndarray) -> cap.TokenLogprob:
        logprobs = logits - _logsumexp(logits)
        top: list[cap.TopLogprob] = []
        if self.top_logprobs:
            best = np.argpartition(-logprobs, self.top_logprobs)[: self.top_logprobs]
            for candidate in best[np.argsort(-logprobs[best])]:
                raw = self.model.piece(int(candidate))
                top.append(
                    cap.TopLogprob(
                        token=raw.decode("utf-8", errors="replace"),
                        logprob=float(logprobs[candidate]),
                        bytes=list(raw),
                    )
                )
        return cap.TokenLogprob(
            token=piece.decode("utf-8", errors="replace"),
            logprob=float(logprobs[token]),
            bytes=list(piece),
            top_logprobs=top,
        )


def _logsumexp(values: np.ndarray) -> float:
    peak = float(values.max())
    return peak + float(np.log(np.exp(values - peak).sum()))


def _logit_bias(model: LlamaModel, bias: dict[str, float]) -> dict[int, float]:
    try:
        ids = [int(key) for key in bias]
    except ValueError:
        raise InvalidRequest("logit_bias keys must be token ids", param="logit_bias") from None
    model.check_token_ids(ids, "logit_bias")
    values = list(bias.values())
    if any(not -100 <= v <= 100 for v in values):
        raise InvalidRequest("logit_bias values must be between -100 and 100", param="logit_bias")
    return dict(zip(ids, values, strict=True))


def _first_stop(text: str, stops: list[str]) -> tuple[int, str] | None:
    """Where the earliest stop sequence in ``text`` starts, and which one it is."""
    found = [(index, stop) for stop in stops if (index := text.find(stop)) != -1]
    return min(found) if found else None


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """The length of the longest tail of ``text`` that could still grow into a stop sequence."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
