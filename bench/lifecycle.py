"""What the operations layer costs: the gate middleware per request, and a model swap under the cap.

Measures, in one run:
* the gate (API key check, rate limit, body limit, metrics, trace) per request, in process, around
  an inner app that answers at once: nothing but the gate is timed (no key, a config key, a
  database key with its SHA-256 lookup in SQLite);
* a request that must evict one model and start another (``max_running_models: 1``, two reference
  models, a real ``kernai serve``), against a request to the model already running: the swap cost
  that LRU eviction adds.

There is no peer run here: llamactl and LocalAI are Go binaries that cannot be installed from a
package registry. Run: ``.venv/bin/python bench/lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from litestar import Litestar, get

from kernai.auth.keys import PermissionMode
from kernai.auth.principal import KeyKind
from kernai.http.gate import Gate
from kernai.http.operations import operations
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager
from kernai.plugins import registry
from kernai.settings import Settings
from kernai.testing import KernaiServer

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
ROUNDS = 5
SWAPS = int(os.environ.get("BENCH_SWAPS", "10"))
CONFIG_KEY = "bench-config-key"


async def _respond(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """The innermost app: a fixed small JSON answer, so that only the gate's work is timed."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,  # type: ignore[operator]
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"object":"list","data":[]}'})  # type: ignore[operator]


@get("/v1/models", sync_to_thread=False, opt=route_opt(RouteClass.INFERENCE))
def _routed() -> None:
    """The route handler the gate finds in the scope (it reads the route's class and body types from it)."""


Litestar([_routed])


async def per_request_us(app: object, headers: dict[str, str]) -> float:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "path_template": "/v1/models",
        "route_handler": _routed,
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "state": {},
    }

    async def receive() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        pass

    best = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(REQUESTS):
            await app(scope, receive, send)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - began) / REQUESTS * 1e6)
    return best


def gate_cost(root: Path) -> None:
    def gate(auth: bool) -> tuple[Gate, str]:
        settings = Settings(
            models_dir=str(root),
            data_dir=str(root / f"data-{auth}"),
            require_inference_auth=auth,
            inference_keys=[CONFIG_KEY],
            rate_limit_localhost=True,
            rate_limit_per_minute=10**9,
            rate_limit_burst=10**9,
        )
        ops = operations(settings, ModelManager.open(settings, registry()))
        _, db_key = ops.state["key_store"].create(
            "bench", KeyKind.INFERENCE, PermissionMode.ALLOW_ALL, [], None
        )
        return Gate(_respond, ops.middleware[0].kwargs["services"]), db_key  # type: ignore[arg-type]

    open_gate, _ = gate(auth=False)
    secured, db_key = gate(auth=True)
    runs = {
        "no gate (baseline)": (_respond, {}),
        "gate, auth off": (open_gate, {}),
        "gate, config key": (secured, {"authorization": f"Bearer {CONFIG_KEY}"}),
        "gate, database key": (secured, {"authorization": f"Bearer {db_key}"}),
    }
    results = {name: asyncio.run(per_request_us(app, headers)) for name, (app, headers) in runs.items()}
    floor = results["gate, auth off"]
    print(f"\nthe gate alone around a fixed answer, best of {ROUNDS} x {REQUESTS} calls (µs per request)")
    print(f"{'':24} {'µs':>8} {'vs auth off':>12}")
    for name, value in results.items():
        print(f"{name:24} {value:8.1f} {value / floor:11.2f}x")


def swap_cost(root: Path) -> None:
    models = root / "models"
    models.mkdir()
    for name in ("left", "right"):
        (models / f"{name}.yaml").write_text(f"name: {name}\nbackend: reference\n")
    config = root / "kernai.yaml"
    config.write_text(yaml.safe_dump({"max_running_models": 1}))
    server = KernaiServer(
        models, root / "data", env={"KERNAI_LOAD_PLUGINS": "reference"}, args=["--config", str(config)]
    )

    def ask(client: httpx.Client, model: str) -> float:
        began = time.perf_counter()
        response = client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )
        assert response.status_code == 200, response.text
        return (time.perf_counter() - began) * 1000

    with server, server.client() as client:
        ask(client, "left")
        warm = [ask(client, "left") for _ in range(SWAPS * 5)]
        swaps = [ask(client, model) for _ in range(SWAPS) for model in ("right", "left")]
    print(f"\nchat request, reference backend, max_running_models 1 ({len(swaps)} swaps)")
    print(f"{'':34} {'p50 ms':>8} {'max ms':>8}")
    print(f"{'model already running':34} {statistics.median(warm):8.1f} {max(warm):8.1f}")
    print(f"{'evict the other, start this one':34} {statistics.median(swaps):8.1f} {max(swaps):8.1f}")


def main() -> None:
    os.environ.setdefault("KERNAI_LOAD_PLUGINS", "reference")
    with tempfile.TemporaryDirectory() as gate_root, tempfile.TemporaryDirectory() as swap_root:
        (Path(gate_root) / "models").mkdir()
        gate_cost(Path(gate_root))
        swap_cost(Path(swap_root))


if __name__ == "__main__":
    main()
