"""The model manager: configs, on-demand start of worker processes, states, crash recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

import psutil

from kernai.capabilities import Capability, Chunk, Request, Result, capability_of
from kernai.config import ConfigError, ModelConfig, load_model_configs
from kernai.errors import ModelNotFound, ModelUnavailable, NotSupported
from kernai.plugins import PluginRegistry, RegisteredBackend
from kernai.settings import Settings
from kernai.worker.client import WorkerClient

log = logging.getLogger(__name__)

LOG_LINES = 2000


class ModelState(StrEnum):
    UNINITIALIZED = "uninitialized"
    BUSY = "busy"
    READY = "ready"
    ERROR = "error"


class ManagedModel:
    """One configured model and, while it runs, its worker process."""

    def __init__(self, config: ModelConfig, backend: RegisteredBackend) -> None:
        self.config = config
        self.backend = backend
        self.worker: WorkerClient | None = None
        self.start_lock = asyncio.Lock()
        self.starting = False
        self.active = 0
        self.last_used = 0.0
        self.started_at: float | None = None
        self.load_seconds: float | None = None
        self.last_error: str | None = None
        self.logs: deque[str] = deque(maxlen=LOG_LINES)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.alive

    @property
    def state(self) -> ModelState:
        if self.starting or (self.running and self.active > 0):
            return ModelState.BUSY
        if self.running:
            return ModelState.READY
        if self.last_error is not None:
            return ModelState.ERROR
        return ModelState.UNINITIALIZED

    def supports(self, capability: Capability) -> bool:
        return capability in self.backend.backend.capabilities

    def log(self, line: str) -> None:
        self.logs.append(line)


class ModelManager:
    """Starts one worker per model on first use and routes typed requests to it."""

    def __init__(self, settings: Settings, registry: PluginRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.models: dict[str, ManagedModel] = {}
        self.config_errors: list[ConfigError] = []
        self.ready = False

    def reload(self) -> None:
        """Re-read the models directory; running models whose config is unchanged keep running."""
        configs, self.config_errors = load_model_configs(self.settings.models_path, self.registry.backend_map())
        for error in self.config_errors:
            log.warning("model config: %s", error)
        models: dict[str, ManagedModel] = {}
        for name, config in configs.items():
            current = self.models.get(name)
            if current is not None and current.config == config:
                models[name] = current
            else:
                models[name] = ManagedModel(config, self.registry.backends[config.backend])
        self.models = models
        self.ready = True

    def get(self, name: str) -> ManagedModel:
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def _check(self, model: ManagedModel, request: Request) -> None:
        capability = capability_of(request)
        if not model.supports(capability):
            raise NotSupported(
                f"Model '{model.name}' (backend '{model.config.backend}') does not support {capability.value}",
                param="model",
            )
        if model.config.disabled:
            raise ModelUnavailable(f"Model '{model.name}' is disabled", code="model_disabled")

    async def ensure_running(self, model: ManagedModel) -> WorkerClient:
        """The model's live worker, started and loaded if needed."""
        if model.running:
            assert model.worker is not None
            return model.worker
        async with model.start_lock:
            if model.running:
                assert model.worker is not None
                return model.worker
            model.starting = True
            worker = WorkerClient(model.config, model.backend.plugin, model.log)
            model.log(f"[kernai] starting worker for '{model.name}' (backend {model.config.backend})")
            try:
                model.load_seconds = await worker.start(self.settings.load_timeout)
            except ModelUnavailable as exc:
                model.last_error = exc.message
                model.log(f"[kernai] {exc.message}")
                raise
            finally:
                model.starting = False
            model.worker = worker
            model.started_at = time.time()
            model.last_error = None
            asyncio.create_task(self._watch(model, worker))
            log.info("model %s loaded in %.2f s (pid %s)", model.name, model.load_seconds, worker.pid)
            return worker

    async def _watch(self, model: ManagedModel, worker: WorkerClient) -> None:
        await worker.exited.wait()
        if not worker.closing:
            returncode = worker.process.returncode if worker.process else None
            model.last_error = f"worker exited unexpectedly (return code {returncode})"
            model.log(f"[kernai] {model.last_error}")
            log.warning("model %s: %s", model.name, model.last_error)
        if model.worker is worker:
            model.worker = None

    async def predict(self, name: str, request: Request) -> Result:
        """Serve a non-streaming request."""
        model = self.get(name)
        self._check(model, request)
        worker = await self.ensure_running(model)
        model.active += 1
        try:
            return await worker.predict(request)
        finally:
            model.active -= 1
            model.last_used = time.monotonic()

    async def stream(self, name: str, request: Request) -> AsyncIterator[Chunk]:
        """Serve a streaming request; closing the iterator early cancels it in the worker."""
        model = self.get(name)
        self._check(model, request)
        worker = await self.ensure_running(model)
        model.active += 1
        try:
            async for chunk in worker.stream(request):
                yield chunk
        finally:
            model.active -= 1
            model.last_used = time.monotonic()

    async def unload(self, name: str) -> bool:
        """Stop the model's worker; ``False`` when it was not running."""
        model = self.get(name)
        worker = model.worker
        if worker is None:
            return False
        await worker.stop()
        model.worker = None
        model.log(f"[kernai] worker for '{name}' stopped")
        return True

    async def shutdown(self) -> None:
        await asyncio.gather(*(self.unload(name) for name, m in self.models.items() if m.worker is not None))

    async def monitor(self, name: str) -> dict[str, Any]:
        """State, process and memory facts of one model, as LocalAI's ``/backend/monitor``."""
        model = self.get(name)
        facts: dict[str, Any] = {
            "model": name,
            "backend": model.config.backend,
            "state": model.state.value,
            "active_requests": model.active,
            "load_seconds": model.load_seconds,
            "error": model.last_error,
        }
        worker = model.worker
        if worker is not None and worker.alive and worker.pid is not None:
            try:
                process = psutil.Process(worker.pid)
                with process.oneshot():
                    memory = process.memory_info()
                    facts.update(
                        pid=worker.pid,
                        uptime_seconds=round(time.time() - process.create_time(), 3),
                        cpu_percent=process.cpu_percent(interval=None),
                        memory_info={"rss": memory.rss, "vms": memory.vms},
                    )
                facts["status"] = await worker.status()
            except (psutil.NoSuchProcess, ModelUnavailable, TimeoutError):
                pass
        return facts
