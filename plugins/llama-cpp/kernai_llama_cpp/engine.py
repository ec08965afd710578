"""Continuous batching: ``parallel`` slots in one llama.cpp context, driven by one scheduler thread.

As llama.cpp's own server does with ``--parallel N``: the context holds ``N`` sequences, each with
its own share of the KV cache (``context_size / N`` cells, rounded up to 256). Each step the
scheduler puts into one batch the next token of every generating sequence and as much of every
waiting prompt as the batch has room for, decodes it once, samples each sequence's next token with
its own sampler chain and hands it to that request's queue. New requests join between steps;
finished, stopped and cancelled ones leave at once and free their slot.

A slot keeps the tokens its last sequence left in the cache. A new request takes the free slot
whose tokens share the longest prefix with its prompt and decodes only the rest (llama-server's
``cache_prompt``), so a chat that grows by one turn does not read its history again.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from kernai_llama_cpp.sampling import SamplerChain

log = logging.getLogger("kernai_llama_cpp.engine")


@dataclass(frozen=True)
class Step:
    """A token a sequence produced, with the logits it was sampled from when logprobs were asked for."""

    token: int
    logits: np.ndarray | None


@dataclass(frozen=True)
class Finished:
    """The end of a sequence: ``stop`` (the model ended it) or ``length`` (its token budget)."""

    reason: str


class Sequence:
    """One request's generation: its prompt and sampler in, :meth:`steps` out."""

    def __init__(
        self, prompt: list[int], sampler: SamplerChain, max_tokens: int, params: dict[str, Any]
    ) -> None:
        self.prompt = prompt
        self.sampler = sampler
        self.max_tokens = max_tokens
        self.params = params
        """The sampling parameters, as the slot status shows them."""
        self.generated = 0
        self.cached_tokens = 0
        """Prompt tokens whose KV cells were reused from the slot's previous sequence."""
        self.finish_reason: str | None = None
        self._events: queue.SimpleQueue[Step | Finished | BaseException] = queue.SimpleQueue()
        self._pending: list[int] = []
        self._cancelled = False
        self._done = False

    def steps(self) -> Iterator[Step]:
        """The tokens as the scheduler samples them, until the sequence finishes."""
        while True:
            event = self._events.get()
            if isinstance(event, Finished):
                self.finish_reason = event.reason
                return
            if isinstance(event, BaseException):
                raise event
            yield event


@dataclass
class Slot:
    """One of the context's sequences: its KV cells and the request using them."""

    id: int
    tokens: list[int] = field(default_factory=list)
    """The tokens whose KV cells the slot holds, in order from position 0."""
    sequence: Sequence | None = None
    last: Sequence | None = None
    """The sequence it runs or ran last (for the status)."""
    last_used: int = 0


class BatchEngine:
    """The scheduler and the context it drives; :meth:`submit` a :class:`Sequence`, read its steps."""

    def __init__(
        self, model: _internals.LlamaModel, params: llama_cpp.llama_context_params, parallel: int
    ) -> None:
        params.n_seq_max = parallel
        params.kv_unified = False  # each slot attends to its own cells only
        params.embeddings = False
        self.context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self.vocab = model.vocab
        self.parallel = parallel
        context = self.context.ctx
        self.n_batch = llama_cpp.llama_n_batch(context)
        self.slot_context = llama_cpp.llama_n_ctx_seq(context)
        """How many tokens (prompt and output) one sequence may hold."""
        self.tokens_generated = 0
        self._memory = llama_cpp.llama_get_memory(context)
        self._batch = llama_cpp.llama_batch_init(max(self.n_batch, parallel), 0, 1)
        self.slots = [Slot(index) for index in range(parallel)]
        self._waiting: deque[Sequence] = deque()
        self._condition = threading.Condition()
        self._closing = False
        self._uses = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
        self._thread.start()

    # --- the request side ----------------------------------------------------------------------------

    def submit(self, sequence: Sequence) -> None:
        with self._condition:
            if self._closing:
                raise RuntimeError("the model is shutting down")
            self._waiting.append(sequence)
            self._condition.notify()

    def cancel(self, sequence: Sequence) -> None:
        """Stop ``sequence`` (a no-op once it finished): it leaves its slot before the next step."""
        with self._condition:
            if sequence._done:
                return
            sequence._cancelled = True
            if sequence in self._waiting:
                self._waiting.remove(sequence)
                sequence._done = True
                sequence.sampler.close()
            self._condition.notify()

    @property
    def busy(self) -> int:
        """Sequences in a slot or waiting for one."""
        return sum(slot.sequence is not None for slot in self.slots) + len(self._waiting)

    def slot_status(self) -> list[dict[str, Any]]:
        """Each slot as llama-server's ``/slots`` reports it: state, token counts, sampling params."""
        status = []
        for slot in self.slots:
            last = slot.last
            status.append(
                {
                    "id": slot.id,
                    "state": "processing" if slot.sequence is not None else "idle",
                    "n_ctx": self.slot_context,
                    "prompt_tokens": len(last.prompt) if last else 0,
                    "generated_tokens": last.generated if last else 0,
                    "cached_tokens": last.cached_tokens if last else 0,
                    "params": dict(last.params) if last else {},
                }
            )
        return status

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout=30)
        stopped = RuntimeError("the model is shutting down")
        for slot in self.slots:
            if slot.sequence is not None:
                self._release(slot, stopped)
        with self._condition:
            while self._waiting:
                sequence = self._waiting.popleft()
                sequence._done = True
                sequence.sampler.close()
                sequence._events.put(stopped)
        llama_cpp.llama_batch_free(self._batch)
        self.context.close()

    # --- the scheduler thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                with self._condition:
                    while True:
                        self._admit()
                        if self._closing or any(slot.sequence is not None for slot in self.slots):
                            break
                        self._condition.wait()
                    if self._closing:
                        return
                self._step()
            except Exception as exc:  # a failed step ends the sequences in it, not the engine
                log.exception("batch step failed")
                for slot in self.slots:
                    if slot.sequence is not None:
                        self._forget(slot)
                        self._release(slot, exc)

    def _admit(self) -> None:
        """Drop cancelled sequences, then seat waiting ones in free slots (best cached prefix first)."""
        for slot in self.slots:
            if slot.sequence is not None and slot.sequence._cancelled:
                self._release(slot, Finished("stop"))
        free = [slot for slot in self.slots if slot.sequence is None]
        while self._waiting and free:
            sequence = self._waiting.popleft()
            slot = max(free, key=lambda s: (_common_prefix(s.tokens, sequence.prompt), -s.last_used))
            free.remove(slot)
            self._seat(slot, sequence)

    def _seat(self, slot: Slot, sequence: Sequence) -> None:
        slot.sequence = slot.last = sequence
        slot.last_used = next(self._uses)
        # at least the prompt's last token is decoded again: its logits give the first output token
        reuse = min(_common_prefix(slot.tokens, sequence.prompt), len(sequence.prompt) - 1)
        if not llama_cpp.llama_memory_seq_rm(self._memory, slot.id, reuse, -1):
            self._forget(slot)
            reuse = 0
        del slot.tokens[reuse:]
        sequence.cached_tokens = reuse
        sequence._pending = sequence.prompt[reuse:]

    def _step(self) -> None:
        """One decode: a token of every generating sequence, then prompt chunks while room is left."""
        batch, count = self._batch, 0
        decoded: list[tuple[Slot, int]] = []  # slot, how many of its pending tokens the batch holds
        outputs: list[tuple[Slot, int]] = []  # slot, the batch index of its logits
        active = [slot for slot in self.slots if slot.sequence is not None]
        # generating sequences first, so that a long prompt never stalls the others' next token
        active.sort(key=lambda slot: slot.sequence is None or slot.sequence.generated == 0)
        for slot in active:
            sequence = slot.sequence
            assert sequence is not None
            room = self.n_batch - count
            if room <= 0:
                break
            chunk = sequence._pending[:room]
            position = len(slot.tokens)
            for offset, token in enumerate(chunk):
                batch.token[count] = token
                batch.pos[count] = position + offset
                batch.n_seq_id[count] = 1
                batch.seq_id[count][0] = slot.id
                batch.logits[count] = False
                count += 1
            decoded.append((slot, len(chunk)))
            if len(chunk) == len(sequence._pending):
                batch.logits[count - 1] = True
                outputs.append((slot, count - 1))
        batch.n_tokens = count
        result = llama_cpp.llama_decode(self.context.ctx, batch)
        if result != 0:
            raise RuntimeError(f"llama_decode returned {result}")
        for slot, taken in decoded:
            sequence = slot.sequence
            assert sequence is not None
            slot.tokens += sequence._pending[:taken]
            del sequence._pending[:taken]
        for slot, index in outputs:
            self._sample(slot, index)

    def _sample(self, slot: Slot, index: int) -> None:
        sequence = slot.sequence
        assert sequence is not None
        if sequence._cancelled:
            return
        token = sequence.sampler.sample(self.context.ctx, index)
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._release(slot, Finished("stop"))
            return
        sequence.generated += 1
        self.tokens_generated += 1
        sequence._events.put(Step(token, sequence.sampler.logits))
        if sequence.generated >= sequence.max_tokens:
            self._release(slot, Finished("length"))
        else:
            sequence._pending = [token]

    def _release(self, slot: Slot, outcome: Finished | BaseException) -> None:
        """End the slot's sequence; its KV cells stay as the slot's prompt cache."""
        sequence = slot.sequence
        assert sequence is not None
        slot.sequence = None
        with self._condition:
            sequence._done = True
        sequence.sampler.close()
        sequence._events.put(outcome)

    def _forget(self, slot: Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, slot.id, -1, -1)
        slot.tokens.clear()


def _common_prefix(first: list[int], second: list[int]) -> int:
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return index
    return min(len(first), len(second))
