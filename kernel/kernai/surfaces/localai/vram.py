"""LocalAI's ``POST /api/models/vram-estimate``: the memory a GGUF model takes on llama.cpp, computed from
the file's own metadata and tensor sizes.

- weights: the tensors of the offloaded layers (all of them by default), byte for byte;
- KV cache: per offloaded layer, its cells times its K and V widths (KV heads × key/value length) at the
  cache type's size; a sliding-window layer holds ``min(context, window + micro-batch)`` cells (padded to
  256, as llama.cpp), unless ``swa_full`` (llama-cpp-python's default) gives it the whole context;
- compute: the logits of one micro-batch (vocabulary × 512 × 4 bytes), llama.cpp's largest buffer for
  models with large vocabularies.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from litestar import Controller, post
from msgspec import Struct

from kernai.errors import InvalidRequest
from kernai.gguf_file import GGUFFacts, InvalidGGUF, gguf_facts
from kernai.http.routes import RouteClass, route_opt
from kernai.http.wire import NonNegativeInt, PositiveInt
from kernai.manager import ModelManager

DEFAULT_CONTEXT = 8192
MICRO_BATCH = 512
CELL_PADDING = 256
LOGIT_BYTES = 4
KV_BYTES_PER_ELEMENT = {0: 2.0, 16: 2.0, 32: 4.0, 8: 34 / 32, 4: 18 / 32}
"""Bytes per cached element by ``kv_quant_bits``: f16 (0), f32, q8_0, q4_0 (their block sizes)."""
SWA_PATTERNS = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2}
"""llama.cpp's sliding-window layer pattern for architectures whose GGUF does not store one: of every
``n`` layers, the first ``n - 1`` use the window."""
_BLOCK = re.compile(r"^blk\.(\d+)\.")


class VramEstimateRequest(Struct, kw_only=True):
    model: str
    context_size: PositiveInt | None = None
    """Default 8192."""
    gpu_layers: NonNegativeInt = 0
    """Layers offloaded to the GPU; 0 = all."""
    kv_quant_bits: NonNegativeInt = 0
    """0 (f16), 32, 8 (q8_0) or 4 (q4_0)."""
    swa_full: bool = True
    """kernai: sliding-window layers cache the whole context (llama-cpp-python's default, which kernai's
    llama-cpp backend runs); false for llama-server's smaller window cache."""


class VramEstimate(Struct, kw_only=True):
    sizeBytes: int
    sizeDisplay: str
    vramBytes: int
    vramDisplay: str
    model_max_context: int
    context_note: str = ""
    # kernai: the parts
    context_size: int
    gpu_layers: int
    weightsVramBytes: int
    kvCacheBytes: int
    computeBytes: int


def display(size: float) -> str:
    """Bytes as LocalAI shows them: ``4.2 GB``, ``250.1 MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def _swa_layers(facts: GGUFFacts, layers: int) -> set[int]:
    if not facts.arch("attention.sliding_window"):
        return set()
    pattern = facts.arch("attention.sliding_window_pattern")
    if isinstance(pattern, list):
        return {i for i, windowed in enumerate(pattern[:layers]) if windowed}
    every = pattern if isinstance(pattern, int) else SWA_PATTERNS.get(facts.architecture, 0)
    return {i for i in range(layers) if every and i % every < every - 1}


def _pad(cells: int) -> int:
    return -(-cells // CELL_PADDING) * CELL_PADDING


def _per_layer(value: object, layer: int) -> int:
    if isinstance(value, list):
        return int(value[layer]) if layer < len(value) else 0
    return int(value) if isinstance(value, int | float) else 0


@dataclass(frozen=True)
class Estimate:
    weights: int
    weights_on_gpu: int
    kv_cache: int
    compute: int
    layers: int

    @property
    def vram(self) -> int:
        return self.weights_on_gpu + self.kv_cache + self.compute


def estimate(facts: GGUFFacts, context: int, gpu_layers: int, kv_bits: int, swa_full: bool) -> Estimate:
    """The model's memory at ``context`` tokens with ``gpu_layers`` offloaded (0: all)."""
    if kv_bits not in KV_BYTES_PER_ELEMENT:
        raise InvalidRequest(
            f"kv_quant_bits must be one of {', '.join(map(str, KV_BYTES_PER_ELEMENT))}", param="kv_quant_bits"
        )
    layers = int(facts.arch("block_count", 0))
    offloaded = layers if gpu_layers == 0 or gpu_layers >= layers else gpu_layers
    on_gpu = set(range(offloaded))
    in_layers = sum(t.n_bytes for t in facts.tensors if (m := _BLOCK.match(t.name)) and int(m[1]) in on_gpu)
    outside = sum(t.n_bytes for t in facts.tensors if not _BLOCK.match(t.name))
    heads = facts.arch("attention.head_count", 1)
    embedding = int(facts.arch("embedding_length", 0))
    windowed = _swa_layers(facts, layers)
    window = int(facts.arch("attention.sliding_window", 0) or 0)
    swa_cells = context if swa_full else min(context, _pad(window + MICRO_BATCH))
    elements = 0
    for layer in on_gpu:
        head_size = embedding // max(_per_layer(heads, layer), 1)
        kv_heads = _per_layer(facts.arch("attention.head_count_kv", heads), layer)
        width = kv_heads * (
            int(facts.arch("attention.key_length", head_size))
            + int(facts.arch("attention.value_length", head_size))
        )
        elements += (swa_cells if layer in windowed else context) * width
    vocabulary = next(
        (t.shape[1] for t in facts.tensors if t.name == "token_embd.weight" and len(t.shape) > 1), 0
    )
    return Estimate(
        weights=facts.weights_bytes,
        weights_on_gpu=in_layers + (outside if offloaded == layers else 0),
        kv_cache=int(elements * KV_BYTES_PER_ELEMENT[kv_bits]),
        compute=vocabulary * min(context, MICRO_BATCH) * LOGIT_BYTES,
        layers=offloaded,
    )


class VramController(Controller):
    path = "/api/models"
    tags = ["localai"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @post("/vram-estimate", status_code=200, summary="Estimate a GGUF model's memory from its own metadata")
    async def vram_estimate(self, data: VramEstimateRequest, manager: ModelManager) -> VramEstimate:
        model = manager.get(data.model)
        path = model.config.model_path
        if path is None:
            raise InvalidRequest(f"Model '{data.model}' has no model file", param="model")
        try:
            facts = await asyncio.to_thread(gguf_facts, path)
        except (InvalidGGUF, OSError) as exc:
            raise InvalidRequest(f"Model '{data.model}': {exc}", param="model") from None
        max_context = int(facts.arch("context_length", 0))
        context = data.context_size or DEFAULT_CONTEXT
        note = "" if data.context_size else f"context_size defaulted to {DEFAULT_CONTEXT}"
        if max_context and context > max_context:
            note = f"{note}; " if note else ""
            note += f"{context} tokens exceed the model's trained maximum of {max_context}"
        parts = estimate(facts, context, data.gpu_layers, data.kv_quant_bits, data.swa_full)
        return VramEstimate(
            sizeBytes=parts.weights,
            sizeDisplay=display(parts.weights),
            vramBytes=parts.vram,
            vramDisplay=display(parts.vram),
            model_max_context=max_context,
            context_note=note,
            context_size=context,
            gpu_layers=parts.layers,
            weightsVramBytes=parts.weights_on_gpu,
            kvCacheBytes=parts.kv_cache,
            computeBytes=parts.compute,
        )
