"""The model manager: the facade the HTTP layer, the gallery, the doctor and the conformance kit use.

Every request goes through :meth:`ModelManager.predict` or :meth:`ModelManager.stream`, which

1. check the model exists, supports the request, is enabled and that the caller's key may use it (the
   ``caller`` the HTTP layer passes; in-process callers such as the doctor pass none and are trusted);
2. take one of the model's slots (``parallel`` run at once, up to ``queue_size`` wait in order, more get 503);
3. start the model's worker if it is not running: at ``max_running_models`` the least recently used idle
   model is stopped (pinned ones never); when all are busy the request waits ``busy_timeout`` seconds, then
   gets 503 (or, with ``force_eviction``, the least recently used busy model is stopped);
4. send the request to the worker and record metrics and a backend trace.

Which models exist is the :class:`~kernai.manager.catalog.Catalog`'s job; starting, stopping, restarting
and idle unload are the :class:`~kernai.manager.supervisor.Supervisor`'s, on the decisions of
:mod:`kernai.manager.decisions`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from kernai.auth.principal import Caller
from kernai.capabilities import Chunk, Request, Result, capability_of
from kernai.checks import checked
from kernai.config import ConfigError
from kernai.errors import ModelNotFound, ModelUnavailable, NotSupported
from kernai.instances import InstanceStore
from kernai.manager.catalog import Catalog
from kernai.manager.model import ManagedModel
from kernai.manager.recording import Recorder
from kernai.manager.supervisor import Supervisor
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing
from kernai.plugins import PluginRegistry
from kernai.settings import Settings
from kernai.store import open_database
from kernai.worker.client import WorkerClient


class ModelManager:
    """Starts one worker per model on first use and routes typed requests to it.

    Constructing it does no I/O: ``db`` is the open SQLite database (:meth:`open` opens the data dir's).
    """

    def __init__(self, settings: Settings, registry: PluginRegistry, db: sqlite3.Connection) -> None:
        self.settings = settings
        self.db = db
        self.instances = InstanceStore(db)
        self.metrics = Metrics()
        self.backend_traces = TraceRing(settings.trace_size)
        self.recorder = Recorder(self.metrics, self.backend_traces)
        self.catalog = Catalog(
            settings, registry, self.instances, self.metrics.rejected.labels("queue_full").inc
        )
        self.supervisor = Supervisor(settings, self.catalog, self.metrics)

    @classmethod
    def open(cls, settings: Settings, registry: PluginRegistry) -> ModelManager:
        """A manager over the SQLite database in the settings' data dir (created if needed)."""
        return cls(settings, registry, open_database(settings.data_path))

    # --- the catalog ------------------------------------------------------------------------------

    @property
    def registry(self) -> PluginRegistry:
        return self.catalog.registry

    @registry.setter
    def registry(self, registry: PluginRegistry) -> None:
        """Plugins were installed or removed: the next :meth:`reload` reads configs against ``registry``."""
        self.catalog.registry = registry

    @property
    def models(self) -> dict[str, ManagedModel]:
        return self.catalog.models

    @property
    def config_errors(self) -> list[ConfigError]:
        return self.catalog.errors

    @property
    def ready(self) -> bool:
        """Whether the configs have been read."""
        return self.catalog.ready

    def reload(self) -> None:
        """Re-read the models dir and the instances table.

        A running model whose config changed only in lifecycle keys keeps its worker; one whose
        config changed otherwise, or that is gone, is stopped.
        """
        self._stop_dropped(self.catalog.reload())

    def _stop_dropped(self, dropped: list[ManagedModel]) -> None:
        for model in dropped:
            self.supervisor.spawn(self.supervisor.stop(model, "its config changed or was removed"))

    async def start(self) -> None:
        """Load the configs and start the idle watchdog; call once the event loop runs."""
        self.reload()
        self.supervisor.start()

    def get(self, name: str, *, caller: Caller | None = None) -> ManagedModel:
        """The model ``name``; 503 when its config is invalid (the error names file and field), else 404.

        With a ``caller``, an invalid config is reported only to a key that may use the model (403 else).
        """
        model = self.models.get(name)
        if model is not None:
            return model
        error = self.catalog.error_for(name)
        if error is None:
            raise ModelNotFound(name)
        if caller is not None:
            caller.use(name)
        raise ModelUnavailable(
            f"Model '{name}' cannot be served, its config is invalid: {error}", code="model_config_invalid"
        )

    def _check(self, model: ManagedModel, request: Request, caller: Caller | None) -> None:
        capability = capability_of(request)
        if caller is not None:
            caller.use(model.name)
        if not model.supports(capability):
            raise NotSupported(
                f"Model '{model.name}' (backend '{model.config.backend}') does not support "
                f"{capability.value}",
                param="model",
            )
        if model.config.disabled:
            raise ModelUnavailable(f"Model '{model.name}' is disabled", code="model_disabled")

    # --- serving ----------------------------------------------------------------------------------

    async def ensure_running(
        self, model: ManagedModel, *, deadline: float | None = None, on_demand: bool = True
    ) -> WorkerClient:
        """The model's live worker, started and loaded if needed (making room under the running cap)."""
        return await self.supervisor.ensure_running(model, deadline=deadline, on_demand=on_demand)

    @asynccontextmanager
    async def _serving(self, model: ManagedModel) -> AsyncIterator[WorkerClient]:
        deadline = asyncio.get_running_loop().time() + self.settings.busy_timeout
        try:
            async with model.admission.slot():
                begun = time.perf_counter()
                try:
                    yield await self.supervisor.ensure_running(model, deadline=deadline)
                    model.restarts = 0
                finally:
                    model.last_used = time.monotonic()
                    model.admission.record(time.perf_counter() - begun)
        finally:
            self.supervisor.changed()

    async def predict(self, name: str, request: Request, *, caller: Caller | None = None) -> Result:
        """Serve a non-streaming request for ``caller`` (403 when its key may not use the model)."""
        model = self.get(name, caller=caller)
        self._check(model, request, caller)
        request = checked(request)
        async with self._serving(model) as worker:
            begun, error, result = time.perf_counter(), None, None
            entry = self.recorder.started(model, request)
            try:
                result = await worker.predict(request)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                usage = getattr(result, "usage", None)
                self.recorder.finished(model, request, begun, usage, error, entry)

    async def stream(
        self, name: str, request: Request, *, caller: Caller | None = None
    ) -> AsyncGenerator[Chunk, None]:
        """Serve a streaming request for ``caller``; closing the iterator early cancels it in the worker."""
        model = self.get(name, caller=caller)
        self._check(model, request, caller)
        request = checked(request)
        async with self._serving(model) as worker:
            begun, error, usage, first = time.perf_counter(), None, None, None
            entry = self.recorder.started(model, request)
            try:
                async for chunk in worker.stream(request):
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    self.recorder.chunk(model, entry, now - begun)
                    usage = getattr(chunk, "usage", None) or usage
                    yield chunk
            except BaseException as exc:
                error = exc if not isinstance(exc, GeneratorExit) else None
                raise
            finally:
                self.recorder.finished(model, request, begun, usage, error, entry, first or begun)

    # --- management -------------------------------------------------------------------------------

    async def start_model(self, name: str) -> ManagedModel:
        """Start a model now (llamactl's ``start``); clears a ``failed`` state."""
        model = self.get(name)
        if model.config.disabled:
            raise ModelUnavailable(f"Model '{name}' is disabled", code="model_disabled")
        model.clear_failure()
        await self.supervisor.ensure_running(model, on_demand=False)
        return model

    async def restart_model(self, name: str) -> ManagedModel:
        await self.unload(name, "restarted")
        return await self.start_model(name)

    async def set_flag(self, name: str, flag: str, value: bool) -> ManagedModel:
        """Persist ``disabled`` or ``pinned`` in the model's YAML file or instance row; a disabled model
        stops."""
        self._stop_dropped(self.catalog.set_flag(self.get(name), flag, value))
        model = self.get(name)
        if flag == "disabled" and value:
            await self.supervisor.stop(model, "disabled")
        if flag == "disabled" and not value:
            model.clear_failure()
        return model

    async def unload(self, name: str, why: str = "unloaded") -> bool:
        """Stop the model's worker (requests in flight end with 503 ``model_stopped`` saying ``why``);
        ``False`` when it was not running."""
        return await self.supervisor.stop(self.get(name), why)

    async def shutdown(self) -> None:
        await self.supervisor.shutdown()

    def update_metrics(self) -> None:
        """Refresh the gauges that describe the current state, before ``/metrics`` is rendered."""
        self.metrics.loaded.set(sum(1 for m in self.models.values() if m.running))
        for model in self.models.values():
            self.metrics.queue_depth.labels(model.name).set(model.admission.waiting)
            self.metrics.active.labels(model.name).set(model.admission.running)

    async def monitor(self, name: str) -> dict[str, Any]:
        """State, process and memory facts of one model, as LocalAI's ``/backend/monitor``."""
        model = self.get(name)
        facts: dict[str, Any] = {
            "model": name,
            "backend": model.config.backend,
            "state": model.state.value,
            "instance_status": model.status,
            "active_requests": model.active,
            "queued_requests": model.admission.waiting,
            "restarts": model.restarts,
            "load_seconds": model.load_seconds,
            "error": model.last_error,
        }
        if model.status == "failed":
            facts["log_tail"] = model.log_tail()
        facts.update(await self.supervisor.process_facts(model))
        return facts
