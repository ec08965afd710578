"""kernai plugin: GGUF language models on llama.cpp, as the ``llama-cpp`` backend.

Chat (with tools, JSON output and GBNF grammars), completion (with echo and fill-in-the-middle),
embeddings, tokenize and detokenize. The engine is imported in ``load``, inside the model's worker
process, never in the server process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from kernai import Backend, SelfTest, hookimpl, model_hooks
from kernai_llama_cpp.options import BACKEND


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(msgspec.structs.replace(BACKEND, facts="kernai_llama_cpp.facts:facts"))


def selftest(folder: Path) -> SelfTest:
    """For ``kernai doctor``: a tiny llama with Q4_0/Q8_0 weights, so its chat runs the quantized kernels."""
    from kernai_llama_cpp.testing import write_tiny_llama

    write_tiny_llama(folder / "tiny-q4_0.gguf", quantized=True)
    return SelfTest(config={"parameters": {"model": "tiny-q4_0.gguf"}, "context_size": 256})


load, predict, status, shutdown = model_hooks("kernai_llama_cpp.model:LlamaModel")
