"""The token loop: sampling settings in, text pieces (with optional logprobs) out.

Built on ``Llama.generate`` rather than ``create_completion`` so that it decodes incrementally
(no re-detokenising the whole output per token), reports logprobs without ``logits_all`` (which
would keep a context x vocabulary matrix of logits), and stops the moment its iterator is closed.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from llama_cpp import LogitsProcessorList

from kernai import capabilities as cap
from kernai.errors import InvalidRequest
from kernai_llama_cpp.lazy_grammar import LazyGrammar
from kernai_llama_cpp.model import LlamaModel

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

    def check_context(self) -> int:
        """The number of tokens left for the output; a 400 naming the limit when the prompt does not fit."""
        context = self.model.context_size
        if len(self.prompt_tokens) >= context:
            raise InvalidRequest(
                f"This model's maximum context length is {context} tokens, but the prompt is "
                f"{len(self.prompt_tokens)} tokens long. Shorten the prompt or raise context_size.",
                param=self.param,
                code="context_length_exceeded",
            )
        return context - len(self.prompt_tokens)

    def _processors(self) -> tuple[LogitsProcessorList | None, list[np.ndarray]]:
        processors: list = []
        captured: list[np.ndarray] = []
        if self.sampling.logit_bias:
            bias = _logit_bias(self.model, self.sampling.logit_bias)

            def apply_bias(_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
                scores[bias[0]] += bias[1]
                return scores

            processors.append(apply_bias)
        if self.top_logprobs is not None:

            def capture(_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
                captured.append(np.array(scores, dtype=np.float32, copy=True))
                return scores

            processors.append(capture)
        if self.grammar is not None:
            processors.append(LazyGrammar(self.model.llama._model.vocab, self.grammar, "grammar"))
        return (LogitsProcessorList(processors) if processors else None), captured

    def run(self) -> Iterator[Piece]:
        """Generate, yielding pieces; closing the iterator stops generation at once."""
        budget = self.check_context()
        wanted = self.sampling.max_tokens or self.default_max_tokens
        max_tokens = min(wanted, budget) if wanted else budget
        settings = {
            key: getattr(self.sampling, key) if getattr(self.sampling, key) is not None else value
            for key, value in DEFAULTS.items()
        }
        processors, captured = self._processors()
        llama = self.model.llama
        llama.set_seed(self.sampling.seed if self.sampling.seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = [s for s in self.stop if s]
        held = ""
        tokens = llama.generate(
            self.prompt_tokens,
            temp=settings["temperature"],
            top_p=settings["top_p"],
            top_k=int(settings["top_k"]),
            min_p=settings["min_p"],
            repeat_penalty=settings["repeat_penalty"],
            presence_penalty=settings["presence_penalty"],
            frequency_penalty=settings["frequency_penalty"],
            logits_processor=processors,
        )
        self.model.active_generations += 1
        try:
            for token in tokens:
                if self.model.is_end_of_generation(token):
                    self.finish_reason = "stop"
                    break
                self.completion_tokens += 1
                self.model.tokens_generated += 1
                piece = self.model.piece(token)
                logprobs = [self._logprob(token, piece, captured.pop())] if captured else []
                text = held + decoder.decode(piece)
                if stops and (found := _first_stop(text, stops)) is not None:
                    self.finish_reason = "stop"
                    cut, self.stop_sequence = found
                    yield Piece(text[:cut], logprobs)
                    return
                keep = _stop_prefix_length(text, stops) if stops else 0
                held = text[len(text) - keep :] if keep else ""
                yield Piece(text[: len(text) - keep], logprobs)
                if self.completion_tokens >= max_tokens:
                    break
            tail = held + decoder.decode(b"", final=True)
            if tail:
                yield Piece(tail)
        finally:
            tokens.close()
            self.model.active_generations -= 1
            for processor in processors or []:
                if isinstance(processor, LazyGrammar):
                    processor.close()

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


def _logit_bias(model: LlamaModel, bias: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    try:
        ids = [int(key) for key in bias]
    except ValueError:
        raise InvalidRequest("logit_bias keys must be token ids", param="logit_bias") from None
    model.check_token_ids(ids, "logit_bias")
    values = list(bias.values())
    if any(not -100 <= v <= 100 for v in values):
        raise InvalidRequest("logit_bias values must be between -100 and 100", param="logit_bias")
    return np.array(ids, dtype=np.intc), np.array(values, dtype=np.float32)


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
