"""Pure pieces behind llamactl's and LocalAI's management routes: command parsing, the config deep merge,
the GGUF header reader, the VRAM arithmetic and the token ledger."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from kernai.errors import InvalidRequest
from kernai.gguf_file import InvalidGGUF, gguf_facts
from kernai.manager.token_ledger import TokenLedger
from kernai.surfaces.llamactl.commands import parse_command
from kernai.surfaces.localai.config_edit import deep_merge
from kernai.surfaces.localai.vram import estimate


def test_llama_server_flags_become_config_keys() -> None:
    parsed = parse_command(
        "llama-cpp",
        "llama-server --model=m.gguf -c 1024 -fa --temp 0.5 --top-k 20 -s -1 --no-mmap --embedding "
        "--chat-template '{{ messages }}' --pooling mean -v --unknown-switch --unknown-value 3 -n -1 "
        "-t -1 -tb -1",
    )
    assert parsed.backend_options == {
        "model": "m.gguf",
        "context_size": 1024,
        "flash_attn": True,
        "parameters": {"temperature": 0.5, "top_k": 20, "seed": -1},
        "mmap": False,
        "embeddings": True,
        "chat_template": "{{ messages }}",
        "pooling": "mean",
    }
    assert parsed.ignored == [
        "-v: kernai has no such setting",
        "--unknown-switch: not a setting kernai knows",
        "--unknown-value: not a setting kernai knows",
        "-n -1: no default limit: left to each request's max_tokens",
        "-t -1: kernai's default thread count",
        "-tb -1: the same as threads",
    ]
    assert parse_command("llama-cpp", "llama-server -fa off -m m").backend_options == {
        "flash_attn": False,
        "model": "m",
    }
    assert parse_command("llama-cpp", "llama-server --chat-template chatml").backend_options == {
        "chat_format": "chatml"
    }
    assert parse_command("mlx_lm", "python -m mlx_lm.server --model m --temp 0.2").backend_options == {
        "model": "m",
        "temp": 0.2,
    }


@pytest.mark.parametrize(
    "command",
    ["llama-server -fa sometimes", "llama-server stray", "llama-server --temp hot", "mlx_lm.server"],
)
def test_bad_llama_server_commands(command: str) -> None:
    backend = "mlx_lm" if command.startswith("mlx") else "llama-cpp"
    with pytest.raises(InvalidRequest):
        parse_command(backend, command)


def test_deep_merge() -> None:
    base = {"a": 1, "p": {"x": 1, "y": 2}, "keep": True}
    assert deep_merge(base, {"p": {"y": None, "z": 3}, "a": {"n": 1}, "keep": None}) == {
        "a": {"n": 1},
        "p": {"x": 1, "z": 3},
    }
    assert base == {"a": 1, "p": {"x": 1, "y": 2}, "keep": True}  # not changed in place


def _write_gguf(path: Path, architecture: str, layers: int, **keys: int) -> Path:
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(layers)
    writer.add_context_length(4096)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    for key, value in keys.items():
        writer.add_uint32(f"{architecture}.{key}", value)
    writer.add_tensor("token_embd.weight", np.zeros((100, 64), dtype=np.float32))
    for layer in range(layers):
        writer.add_tensor(f"blk.{layer}.attn_q.weight", np.zeros((64, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_gguf_header_and_the_vram_arithmetic(tmp_path: Path) -> None:
    facts = gguf_facts(_write_gguf(tmp_path / "m.gguf", "llama", 4))
    assert facts.architecture == "llama" and facts.arch("block_count") == 4
    assert facts.weights_bytes == 100 * 64 * 4 + 4 * 64 * 64 * 2
    full = estimate(facts, 1000, 0, 0, swa_full=True)
    assert full.kv_cache == 4 * 1000 * 2 * (16 + 16) * 2  # layers, cells, KV heads, K + V of 64/4, f16
    assert full.compute == 100 * 512 * 4 and full.weights_on_gpu == facts.weights_bytes
    half = estimate(facts, 1000, 2, 8, swa_full=True)
    assert half.weights_on_gpu == 2 * 64 * 64 * 2 and half.kv_cache == int(full.kv_cache / 2 * 34 / 64)

    windowed = gguf_facts(_write_gguf(tmp_path / "g.gguf", "gemma3", 6, **{"attention.sliding_window": 128}))
    small = estimate(windowed, 4096, 0, 0, swa_full=False)
    per_cell = 2 * 32 * 2
    assert small.kv_cache == (5 * 768 + 4096) * per_cell  # 5 of 6 layers hold 128 + 512 cells, padded to 768

    (tmp_path / "x.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(InvalidGGUF):
        gguf_facts(tmp_path / "x.gguf")
    (tmp_path / "cut.gguf").write_bytes((tmp_path / "m.gguf").read_bytes()[:40])
    with pytest.raises(InvalidGGUF):
        gguf_facts(tmp_path / "cut.gguf")


def test_the_token_ledger() -> None:
    ledger = TokenLedger()
    entry = ledger.begin("m", "chat")
    ledger.chunk(entry, 0.1)
    ledger.chunk(entry, 0.2)
    assert ledger.of("m").active == [entry] and entry.generated_tokens == 2
    assert entry.time_to_first_token_ms == 100.0
    ledger.end("m", entry, prompt_tokens=7, generated_tokens=5, seconds=1.1)
    tokens = ledger.of("m")
    assert tokens.active == [] and tokens.last is entry and tokens.requests == 1
    assert entry.tokens_per_second == 5.0 and tokens.prompt_seconds == pytest.approx(0.1)


def test_the_token_ledger_ends_the_request_it_is_given_among_equal_ones() -> None:
    ledger = TokenLedger()
    first, second = ledger.begin("m", "chat"), ledger.begin("m", "chat")
    second.started = first.started  # equal field for field, as on a coarse clock
    ledger.end("m", second, prompt_tokens=1, generated_tokens=1, seconds=0.5)
    assert len(ledger.of("m").active) == 1 and ledger.of("m").active[0] is first
