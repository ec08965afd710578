"""LocalAI's VRAM estimate for gemma-3-270m against what llama.cpp itself allocates for it (its model, KV
cache and compute buffers, as it logs them) at two context sizes, with and without the full-size
sliding-window cache."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow
MIB = 2**20
LOAD = """
import sys, llama_cpp
llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, swa_full=sys.argv[3] == "1", verbose=True)
"""


def llama_cpp_buffers(model: Path, context: int, swa_full: bool) -> dict[str, float]:
    """The model, KV and compute buffer sizes (bytes) llama.cpp logs when it loads ``model``."""
    log = subprocess.run(
        [sys.executable, "-c", LOAD, str(model), str(context), "1" if swa_full else "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stderr

    def total(pattern: str) -> float:
        return sum(float(size) * MIB for size in re.findall(pattern + r" buffer size =\s+([\d.]+) MiB", log))

    return {
        "model": total(r"CPU_Mapped model"),
        "kv": total(r"CPU KV"),
        "compute": total(r"CPU compute"),
    }


@pytest.mark.parametrize("context", [2048, 8192])
@pytest.mark.parametrize("swa_full", [True, False])
def test_the_estimate_is_within_10_percent_of_llama_cpps_buffers(
    http: httpx.Client, gemma: str, surfaces_server: KernaiServer, context: int, swa_full: bool
) -> None:
    reply = http.post(
        "/api/models/vram-estimate", json={"model": gemma, "context_size": context, "swa_full": swa_full}
    )
    assert reply.status_code == 200, reply.text
    estimate = reply.json()
    assert estimate["model_max_context"] == 32768 and estimate["context_note"] == ""
    measured = llama_cpp_buffers(surfaces_server.models_dir / "gemma-3-270m-q4_k_m.gguf", context, swa_full)
    assert estimate["sizeBytes"] == pytest.approx(measured["model"], rel=0.10)
    assert estimate["kvCacheBytes"] == pytest.approx(measured["kv"], rel=0.10)
    assert estimate["computeBytes"] == pytest.approx(measured["compute"], rel=0.10)
    total = measured["model"] + measured["kv"] + measured["compute"]
    assert estimate["vramBytes"] == pytest.approx(total, rel=0.10)
    assert estimate["vramDisplay"].endswith(" MB") and estimate["sizeDisplay"] == "246.6 MB"


def test_the_defaults_and_partial_offload(http: httpx.Client, gemma: str) -> None:
    default = http.post("/api/models/vram-estimate", json={"model": gemma}).json()
    assert default["context_size"] == 8192 and "defaulted to 8192" in default["context_note"]
    half = http.post("/api/models/vram-estimate", json={"model": gemma, "gpu_layers": 9}).json()
    assert half["gpu_layers"] == 9 and half["kvCacheBytes"] * 2 == default["kvCacheBytes"]
    assert half["weightsVramBytes"] < default["weightsVramBytes"] / 2  # the embeddings stay on the CPU
    q8 = http.post("/api/models/vram-estimate", json={"model": gemma, "kv_quant_bits": 8}).json()
    assert q8["kvCacheBytes"] == pytest.approx(default["kvCacheBytes"] * 34 / 64, rel=0.001)
    beyond = http.post("/api/models/vram-estimate", json={"model": gemma, "context_size": 65536}).json()
    assert "exceed the model's trained maximum of 32768" in beyond["context_note"]
