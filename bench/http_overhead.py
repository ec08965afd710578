"""HTTP and worker-IPC overhead of kernai, side by side with the floor it is built on.

Measures, in one run:
* ``GET /v1/models`` and a small ``POST /v1/tokenize`` (served by a worker process running the
  reference backend) at 1 and 32 concurrent connections, with wrk: requests/s, p50 and p99;
* the same two routes on a bare Litestar + msgspec app on granian (no model manager, no worker):
  the floor, so the ratio shows what kernai's layers cost;
* the round trip of one worker call over the msgpack protocol, against calling the backend's
  ``predict`` hook in-process: the IPC overhead in microseconds.

Run: ``.venv/bin/python bench/http_overhead.py`` (needs ``wrk``: ``apt-get install wrk``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kernai.capabilities import TokenizeRequest
from kernai.config import load_model_configs
from kernai.plugins import load_plugin, registry
from kernai.testing import KernaiServer
from kernai.testing.server import free_port
from kernai.worker.client import WorkerClient

DURATION = os.environ.get("BENCH_DURATION", "5s")
TOKENIZE = '{"model":"echo","content":"hello world"}'


def wrk(url: str, connections: int, body: str | None = None) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) of ``url`` under ``connections`` keep-alive connections."""
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(
            f'wrk.method = "POST"\nwrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n'
        )
        script.close()
    command = [
        "wrk",
        "-t1" if connections == 1 else "-t2",
        f"-c{connections}",
        f"-d{DURATION}",
        "--latency",
        url,
    ]
    if script:
        command[1:1] = ["-s", script.name]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if script:
        os.unlink(script.name)

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": latency("50"),
        "p99": latency("99"),
    }


def http_rows(base: str) -> dict[tuple[str, int], dict[str, float]]:
    httpx.post(f"{base}/v1/tokenize", content=TOKENIZE, headers={"content-type": "application/json"})
    rows = {}
    for connections in (1, 32):
        rows[("GET /v1/models", connections)] = wrk(f"{base}/v1/models", connections)
        rows[("POST /v1/tokenize", connections)] = wrk(f"{base}/v1/tokenize", connections, TOKENIZE)
    return rows


def bare_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "_bare_app:app",
        ],
        cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/v1/models", timeout=1)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("bare app did not start")


async def ipc_round_trip(models_dir: Path, calls: int = 3000) -> dict[str, float]:
    """p50/p99 µs of one worker call vs the same hook called in-process."""
    backends = registry().backend_map()
    configs, _ = load_model_configs(models_dir, backends)
    config = configs["echo"]
    request = TokenizeRequest(content="hello world")

    worker = WorkerClient(config, "reference", lambda line: None)
    await worker.start(60)
    try:
        for _ in range(300):
            await worker.predict(request)
        ipc = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            await worker.predict(request)
            ipc.append((time.perf_counter_ns() - start) / 1000)
    finally:
        await worker.stop()

    hooks = load_plugin("reference").hook  # the worker's view: only the model's plugin
    model = hooks.load(backend="reference", config=config)
    raw = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        hooks.predict(backend="reference", model=model, request=request)
        raw.append((time.perf_counter_ns() - start) / 1000)

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    return {
        "ipc_p50": pct(ipc, 50),
        "ipc_p99": pct(ipc, 99),
        "raw_p50": pct(raw, 50),
        "raw_p99": pct(raw, 99),
    }


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench/http_overhead.py needs wrk (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="kernai-bench-"))
    models = root / "models"
    models.mkdir()
    (models / "echo.yaml").write_text("name: echo\nbackend: reference\n")

    with KernaiServer(models, root / "data", env={"KERNAI_LOAD_PLUGINS": "reference"}) as server:
        kernai_rows = http_rows(server.url)
    bare, base = bare_server()
    try:
        bare_rows = http_rows(base)
    finally:
        bare.terminate()
        bare.wait()
    ipc = asyncio.run(ipc_round_trip(models))

    print(
        f"wrk {DURATION} per row; kernai = full app (worker process for POST); "
        "bare = Litestar + granian alone\n"
    )
    print(
        f"{'route':<20}{'conns':>6}{'kernai req/s':>14}{'bare req/s':>12}{'ratio':>7}"
        f"{'kernai p50/p99 ms':>20}{'bare p50/p99 ms':>18}"
    )
    for key, row in kernai_rows.items():
        floor = bare_rows[key]
        print(
            f"{key[0]:<20}{key[1]:>6}{row['rps']:>14.0f}{floor['rps']:>12.0f}"
            f"{row['rps'] / floor['rps']:>7.2f}"
            f"{row['p50']:>11.2f}/{row['p99']:<8.2f}{floor['p50']:>10.2f}/{floor['p99']:<7.2f}"
        )
    print(
        f"\nworker round trip (tokenize, reference backend): p50 {ipc['ipc_p50']:.0f} µs (target < 200 µs), "
        f"p99 {ipc['ipc_p99']:.0f} µs; in-process hook call p50 {ipc['raw_p50']:.1f} µs -> IPC overhead p50 "
        f"{ipc['ipc_p50'] - ipc['raw_p50']:.0f} µs"
    )


if __name__ == "__main__":
    main()
