"""``kernai doctor``: does each installed backend work on this machine?

For every backend that declares a self-test (:attr:`kernai.Backend.selftest`), the doctor writes its
smallest model into a temporary folder, loads it in a worker process and runs one request, exactly as
the server would. A backend whose engine was built for instructions this CPU lacks dies there with
SIGILL, in the worker, and is reported with the signal and the fix instead of taking the doctor down.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from pathlib import Path
from typing import Literal

import yaml
from msgspec import Struct

from kernai.backends import SelfTest, SelfTestUnavailable
from kernai.errors import KernaiError
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry, RegisteredBackend
from kernai.samples import sample_request
from kernai.settings import Settings
from kernai.worker.client import WorkerCrashed, signal_name

Outcome = Literal["ok", "crashed", "failed", "untested", "missing"]
MODEL = "doctor"


class Finding(Struct, kw_only=True):
    """The doctor's verdict on one backend."""

    backend: str
    outcome: Outcome
    detail: str
    plugin: str | None = None
    signal: str | None = None
    seconds: float | None = None


def _selftest(reference: str, folder: Path) -> SelfTest:
    module, _, function = reference.partition(":")
    result = getattr(importlib.import_module(module), function)(folder)
    if not isinstance(result, SelfTest):
        raise TypeError(f"{reference} returned {type(result).__name__}, not kernai.backends.SelfTest")
    return result


async def check_backend(
    entry: RegisteredBackend, registry: PluginRegistry, load_timeout: float = 300.0
) -> Finding:
    """Load ``entry``'s self-test model in a worker and run one request."""
    backend = entry.backend
    found = Finding(
        backend=backend.name,
        plugin=entry.plugin,
        outcome="untested",
        detail="the backend declares no self-test",
    )
    if backend.selftest is None:
        return found
    if entry.environment is not None:
        found.detail = f"it lives in its own environment ({entry.environment}): its self-test runs only there"
        return found
    with tempfile.TemporaryDirectory(prefix="kernai-doctor-") as scratch:
        root = Path(scratch)
        (root / "models").mkdir()
        try:
            test = _selftest(backend.selftest, root / "models")
        except SelfTestUnavailable as exc:
            found.detail = f"no test model here: {exc}"
            return found
        except Exception as exc:
            found.outcome, found.detail = (
                "failed",
                f"its self-test could not prepare a model: {type(exc).__name__}: {exc}",
            )
            return found
        request = test.request or sample_request(backend.capabilities[0], root)
        if request is None:
            found.detail = f"its self-test gives no request for '{backend.capabilities[0].value}'"
            return found
        config = {**test.config, "name": MODEL, "backend": backend.name, "auto_restart": False}
        (root / "models" / f"{MODEL}.yaml").write_text(yaml.safe_dump(config))
        settings = Settings(
            models_dir=str(root / "models"), data_dir=str(root / "data"), load_timeout=load_timeout
        )
        manager = ModelManager.open(settings, registry)
        manager.reload()
        if errors := manager.config_errors:
            found.outcome, found.detail = "failed", f"its self-test model config was refused: {errors}"
            return found
        started = time.monotonic()
        try:
            await manager.predict(MODEL, request)
            found.outcome, found.detail = (
                "ok",
                f"loaded its test model and answered a {type(request).__name__}",
            )
        except WorkerCrashed as exc:
            found.outcome, found.detail = "crashed", exc.message
            if exc.returncode is not None and exc.returncode < 0:
                found.signal = signal_name(-exc.returncode)
        except KernaiError as exc:
            found.outcome, found.detail = "failed", exc.message
        finally:
            found.seconds = round(time.monotonic() - started, 3)
            await manager.shutdown()
    return found


def missing(installed: set[str], offered: list[str]) -> list[Finding]:
    """Backends a gallery offers that no installed plugin provides."""
    return [
        Finding(backend=name, outcome="missing", detail=f"not installed: kernai backends install {name}")
        for name in offered
        if name not in installed
    ]
