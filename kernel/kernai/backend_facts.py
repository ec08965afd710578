"""What a backend's engine says about itself (versions, build flags, compute devices), read in a short
subprocess of the backend's interpreter (a backend environment's own, with its isolated environment
variables, as its workers run): the engine is never imported in the server process.

A backend declares ``Backend.facts = "module:function"``; ``python -m kernai.backend_facts module:function``
calls it and prints the :class:`BackendFacts` as JSON. The server caches the answer per backend.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

import msgspec
from msgspec import Struct, field

from kernai.backend_envs.declarations import interpreter_environ
from kernai.errors import BackendError, NotSupported
from kernai.plugins import RegisteredBackend

TIMEOUT = 60.0


class Device(Struct, kw_only=True):
    """A compute device the engine sees; memory in bytes."""

    name: str
    description: str
    type: str
    memory_free: int | None = None
    memory_total: int | None = None


class BackendFacts(Struct, kw_only=True):
    versions: dict[str, str]
    """Engine and binding versions, e.g. ``{"llama-cpp-python": "0.3.36", "ggml": "0.25.3"}``."""
    build: dict[str, str] = field(default_factory=dict)
    """Build flags and features, e.g. ``{"AVX2": "1", "gpu_offload": "0"}``."""
    devices: list[Device] = field(default_factory=list)


_cache: dict[tuple[str, str], BackendFacts] = {}


async def read_backend_facts(entry: RegisteredBackend) -> BackendFacts:
    """The facts of ``entry``'s engine (cached); 400 when the backend declares none, 500 when reading
    them fails."""
    reference = entry.backend.facts
    if reference is None:
        raise NotSupported(f"Backend '{entry.backend.name}' does not report engine facts")
    key = (entry.python, reference)
    if key in _cache:
        return _cache[key]
    process = await asyncio.create_subprocess_exec(
        entry.python,
        "-m",
        "kernai.backend_facts",
        reference,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=interpreter_environ(entry.python),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BackendError(
            f"Backend '{entry.backend.name}': reading its facts took over {TIMEOUT:.0f} s"
        ) from None
    if process.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BackendError(f"Backend '{entry.backend.name}': reading its facts failed: {tail[0]}")
    facts = _cache[key] = msgspec.json.decode(out, type=BackendFacts)
    return facts


def main(reference: str) -> None:
    module, _, function = reference.partition(":")
    facts = getattr(importlib.import_module(module), function)()
    if not isinstance(facts, BackendFacts):
        raise TypeError(f"{reference} returned {type(facts).__name__}, not kernai.backend_facts.BackendFacts")
    sys.stdout.buffer.write(msgspec.json.encode(facts))


if __name__ == "__main__":  # run as the module the backend's function imports, not as __main__
    importlib.import_module("kernai.backend_facts").main(sys.argv[1])
