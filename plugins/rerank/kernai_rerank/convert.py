"""Convert a BERT model in Hugging Face safetensors layout to GGUF, with numpy, safetensors and gguf only.

llama.cpp's own converter imports torch; this one does not. It handles the two layouts users have:

- sentence-transformers embedding models (``BertModel``: ``config.json``, ``model.safetensors``,
  ``vocab.txt``, ``1_Pooling/config.json``), written with MEAN or CLS pooling;
- BERT cross-encoders (``BertForSequenceClassification``), written with RANK pooling: the pooler
  becomes llama.cpp's ``cls`` tensor and the classifier its ``cls.output``.

Command line::

    python -m kernai_rerank.convert MODEL_DIR OUT.gguf [--outtype f16|f32]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gguf
import numpy as np

ARCH = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SKIPPED = ("embeddings.position_ids", "cls.predictions", "cls.seq_relationship")
_KEPT_F32 = ("position_embd", "token_types")  # llama.cpp adds these to f32 activations as they are


class ConversionError(ValueError):
    """The model folder is not a BERT model this converter understands."""


def _pooling(model_dir: Path, config: Mapping[str, Any]) -> gguf.PoolingType:
    if _is_cross_encoder(config):
        return gguf.PoolingType.RANK
    pooling_file = model_dir / "1_Pooling" / "config.json"
    if pooling_file.exists():
        pooling = json.loads(pooling_file.read_text())
        if pooling.get("pooling_mode_cls_token"):
            return gguf.PoolingType.CLS
    return gguf.PoolingType.MEAN


def _is_cross_encoder(config: Mapping[str, Any]) -> bool:
    return "BertForSequenceClassification" in config.get("architectures", [])


def _gguf_name(name: str, names: gguf.TensorNameMap) -> str | None:
    """The GGUF name of a Hugging Face tensor; ``None`` for tensors llama.cpp does not use."""
    name = name.removeprefix("bert.")
    if name.startswith(_SKIPPED):
        return None
    if name.startswith("pooler.dense."):
        return "cls." + name.rsplit(".", 1)[1]
    if name.startswith("classifier."):
        return "cls.output." + name.rsplit(".", 1)[1]
    mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ConversionError(f"unexpected tensor '{name}' for a BERT model")
    return mapped


def _phantom(token: str) -> str:
    """llama.cpp's WordPiece vocab marks word starts with U+2581 instead of marking continuations."""
    if token in SPECIAL_TOKENS or (token.startswith("[") and token.endswith("]")):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def write_bert_gguf(
    path: Path,
    config: Mapping[str, Any],
    tensors: Mapping[str, np.ndarray],
    vocab: list[str],
    *,
    pooling: gguf.PoolingType,
    labels: list[str] | None = None,
    outtype: str = "f16",
    name: str = "bert",
) -> None:
    """Write a BERT GGUF from Hugging Face config keys, tensors (HF names) and a WordPiece vocab.

    The file appears at ``path`` complete or not at all.
    """
    if len(vocab) != config["vocab_size"]:
        raise ConversionError(f"vocab.txt has {len(vocab)} tokens, config.json says {config['vocab_size']}")
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ConversionError(f"vocab.txt lacks the special tokens {', '.join(missing)}")
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, ARCH)
        writer.add_name(name)
        writer.add_context_length(int(config["max_position_embeddings"]))
        writer.add_embedding_length(int(config["hidden_size"]))
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_block_count(blocks)
        writer.add_head_count(int(config["num_attention_heads"]))
        writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
        writer.add_causal_attention(False)
        writer.add_pooling_type(pooling)
        writer.add_file_type(
            gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32
        )
        if labels:
            writer.add_classifier_output_labels(labels)
        _add_vocab(
            writer,
            vocab,
            int(config.get("type_vocab_size", 2)),
            cross_encoder=pooling is gguf.PoolingType.RANK,
        )
        for hf_name, array in tensors.items():
            target = _gguf_name(hf_name, names)
            if target is None:
                continue
            data = np.ascontiguousarray(array, dtype=np.float32)
            if outtype == "f16" and data.ndim == 2 and not target.startswith(_KEPT_F32):
                data = data.astype(np.float16)
            writer.add_tensor(target, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _add_vocab(writer: gguf.GGUFWriter, vocab: list[str], type_count: int, *, cross_encoder: bool) -> None:
    writer.add_tokenizer_model("bert")
    writer.add_token_list([_phantom(token) for token in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in SPECIAL_TOKENS else gguf.TokenType.NORMAL for t in vocab]
    )
    writer.add_token_type_count(type_count)
    writer.add_bos_token_id(vocab.index("[CLS]"))
    writer.add_eos_token_id(vocab.index("[SEP]"))
    writer.add_sep_token_id(vocab.index("[SEP]"))
    writer.add_unk_token_id(vocab.index("[UNK]"))
    writer.add_pad_token_id(vocab.index("[PAD]"))
    writer.add_mask_token_id(vocab.index("[MASK]"))
    writer.add_add_bos_token(True)
    # llama.cpp builds a rerank pair as [BOS] query [EOS] [SEP] doc [EOS], each piece gated by these
    # flags: EOS without SEP gives BERT's own pair format, [CLS] query [SEP] doc [SEP].
    writer.add_add_eos_token(cross_encoder)
    writer.add_add_sep_token(not cross_encoder)


def convert(model_dir: Path, out: Path, *, outtype: str = "f16") -> Path:
    """Convert the BERT model in ``model_dir`` (safetensors) to the GGUF file ``out``."""
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    config_file, weights, vocab_file = (
        model_dir / n for n in ("config.json", "model.safetensors", "vocab.txt")
    )
    for required in (config_file, weights, vocab_file):
        if not required.exists():
            raise ConversionError(f"{required} is missing")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != "bert":
        raise ConversionError(f"model_type is '{config.get('model_type')}', only 'bert' is supported")
    if outtype not in ("f16", "f32"):
        raise ConversionError(f"outtype must be f16 or f32, not '{outtype}'")
    vocab = vocab_file.read_text(encoding="utf-8").splitlines()
    labels = None
    if _is_cross_encoder(config):
        id2label = config.get("id2label") or {"0": "LABEL_0"}
        labels = [id2label[str(i)] for i in range(len(id2label))]
    write_bert_gguf(
        out,
        config,
        load_file(str(weights)),
        vocab,
        pooling=_pooling(model_dir, config),
        labels=labels,
        outtype=outtype,
        name=config.get("_name_or_path") or model_dir.name,
    )
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kernai-bert-to-gguf", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="folder with config.json, model.safetensors, vocab.txt")
    parser.add_argument("out", type=Path, help="GGUF file to write")
    parser.add_argument(
        "--outtype", choices=("f16", "f32"), default="f16", help="type of the weight matrices"
    )
    args = parser.parse_args(argv)
    try:
        path = convert(args.model_dir, args.out, outtype=args.outtype)
    except ConversionError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
