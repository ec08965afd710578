"""The ``llama-cpp`` backend as the plugin declares it: capabilities and model-config options.

Common keys (``context_size``, ``threads``, ``gpu_layers``, ``embeddings``) come from the kernel's
model config; the options below are the llama.cpp-specific ones. Defaults were measured on a
2-core x86_64 machine (see the plugin README).
"""

from __future__ import annotations

import os

from kernai import Backend, BackendOption
from kernai.capabilities import Capability
from kernai.config import INT32_MAX

NAME = "llama-cpp"
DEFAULT_CONTEXT_SIZE = 2048
POOLING_TYPES = {"mean": 1, "cls": 2, "last": 3}

BACKEND = Backend(
    name=NAME,
    description="GGUF language models on llama.cpp (llama-cpp-python): chat, completion, embeddings, tokens.",
    capabilities=[
        Capability.CHAT,
        Capability.COMPLETION,
        Capability.EMBEDDINGS,
        Capability.TOKENIZE,
        Capability.DETOKENIZE,
        Capability.APPLY_TEMPLATE,
    ],
    options=[
        BackendOption(
            name="threads_batch",
            type="int",
            minimum=0,
            maximum=INT32_MAX,
            description="Threads for prompt processing (default or 0: same as threads).",
        ),
        BackendOption(
            name="batch_size",
            type="int",
            default=512,
            minimum=1,
            maximum=INT32_MAX,
            description="Prompt tokens evaluated per batch (n_batch).",
        ),
        BackendOption(
            name="chat_format",
            type="str",
            description="A llama-cpp-python chat format (e.g. gemma, chatml, llama-3) for models "
            "whose GGUF has no chat template.",
        ),
        BackendOption(
            name="chat_template",
            type="str",
            description="A Jinja chat template (Hugging Face style); wins over the GGUF's.",
        ),
        BackendOption(
            name="pooling",
            type="str",
            choices=list(POOLING_TYPES),
            description="Embedding pooling; default: the GGUF's, or mean when it declares none.",
        ),
        BackendOption(name="mmap", type="bool", default=True, description="Memory-map the model file."),
        BackendOption(name="mlock", type="bool", default=False, description="Lock the model in RAM."),
        BackendOption(name="flash_attn", type="bool", default=False, description="Use flash attention."),
    ],
    parallel=True,
    selftest="kernai_llama_cpp:selftest",
)


def default_threads() -> int:
    """Half the CPUs this process may run on, at least 1 (1 on a 2-core machine, which measured fastest)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)
