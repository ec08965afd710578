"""The model manager: configs, on-demand start of worker processes, the running cap, idle unload, restarts.

Every request goes through :meth:`ModelManager.predict` or :meth:`ModelManager.stream`, which

1. check the model exists, supports the request, is enabled and that the caller's key may use it;
2. take one of the model's slots (``parallel`` run at once, up to ``queue_size`` wait in order, more get 503);
3. start the model's worker if it is not running: at ``max_running_models`` the least recently used idle
   model is stopped (pinned ones never); when all are busy the request waits ``busy_timeout`` seconds, then
   gets 503 (or, with ``force_eviction``, the least recently used busy model is stopped);
4. send the request to the worker and record metrics and a backend trace.

A watchdog unloads models idle for longer than their ``idle_timeout``. A worker that dies on its own is
restarted ``max_restarts`` times, ``restart_delay`` seconds apart; then the model stays ``failed`` with the
last lines of its log until it is started again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import msgspec
import psutil

from kernai.admission import Admission
from kernai.auth.principal import authorize_model
from kernai.capabilities import Capability, Chunk, Request, Result, capability_of
from kernai.config import ConfigError, ModelConfig, load_model_configs
from kernai.errors import Conflict, KernaiError, ModelNotFound, ModelUnavailable, NotSupported
from kernai.instances import InstanceStore, update_config_source
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing
from kernai.plugins import PluginRegistry, RegisteredBackend
from kernai.settings import Settings
from kernai.store import open_database
from kernai.worker.client import WorkerClient, WorkerCrashed

log = logging.getLogger(__name__)

LOG_LINES = 2000
ERROR_TAIL = 20
LIVE_FIELDS = (
    "description",
    "disabled",
    "pinned",
    "on_demand_start",
    "idle_timeout",
    "auto_restart",
    "max_restarts",
    "restart_delay",
    "source",
)
"""Config keys that take effect without restarting a running worker."""


class ModelState(StrEnum):
    UNINITIALIZED = "uninitialized"
    BUSY = "busy"
    READY = "ready"
    ERROR = "error"


class ManagedModel:
    """One configured model and, while it runs, its worker process."""

    def __init__(
        self, config: ModelConfig, backend: RegisteredBackend, queue_size: int, on_full: Callable[[], None]
    ) -> None:
        self.config = config
        self.backend = backend
        parallel = config.parallel if backend.backend.parallel else 1
        self.admission = Admission(config.name, parallel, queue_size, on_full)
        self.worker: WorkerClient | None = None
        self.process: psutil.Process | None = None
        """The worker's process, kept so that ``cpu_percent`` measures since the previous reading."""
        self.start_lock = asyncio.Lock()
        self.starting = False
        self.stopping = False
        self.restarting = False
        self.failed = False
        """Gave up restarting: requests get 503 until the model is started again."""
        self.failure: WorkerCrashed | None = None
        """The fatal crash that failed the model (its message is what requests get), if one did."""
        self.restarts = 0
        self.last_used = 0.0
        self.load_seconds: float | None = None
        self.last_error: str | None = None
        self.logs: deque[str] = deque(maxlen=LOG_LINES)
        self.log_listeners: set[Callable[[str], None]] = set()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.alive and not self.stopping

    @property
    def active(self) -> int:
        return self.admission.running

    @property
    def occupies_slot(self) -> bool:
        """Whether the model counts against ``max_running_models``."""
        return self.running or self.starting or self.restarting

    @property
    def state(self) -> ModelState:
        if self.starting or (self.running and self.active > 0):
            return ModelState.BUSY
        if self.running:
            return ModelState.READY
        if self.last_error is not None:
            return ModelState.ERROR
        return ModelState.UNINITIALIZED

    @property
    def status(self) -> str:
        """The status as llamactl names it: running, stopped, failed, restarting or shutting_down."""
        if self.stopping:
            return "shutting_down"
        if self.restarting:
            return "restarting"
        if self.running or self.starting:
            return "running"
        if self.failed or self.last_error is not None:
            return "failed"
        return "stopped"

    def clear_failure(self) -> None:
        """Forget a ``failed`` state and the restarts count (an explicit start, enabling)."""
        self.failed = False
        self.failure = None
        self.restarts = 0

    def log_tail(self, lines: int = ERROR_TAIL) -> list[str]:
        return list(self.logs)[-lines:] if lines > 0 else []

    def supports(self, capability: Capability) -> bool:
        return capability in self.backend.backend.capabilities

    def log(self, line: str) -> None:
        self.logs.append(line)
        for listener in list(self.log_listeners):
            listener(line)


class ModelManager:
    """Starts one worker per model on first use and routes typed requests to it."""

    def __init__(self, settings: Settings, registry: PluginRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.models: dict[str, ManagedModel] = {}
        self.config_errors: list[ConfigError] = []
        self.ready = False
        self.db = open_database(settings.data_path)
        self.instances = InstanceStore(self.db)
        self.metrics = Metrics()
        self.backend_traces = TraceRing(settings.trace_size)
        self._capacity_changed = asyncio.Event()
        self._capacity_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    # --- configs ----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the models dir and the instances table.

        A running model whose config changed only in lifecycle keys keeps its worker; one whose
        config changed otherwise, or that is gone, is stopped.
        """
        backends = self.registry.backend_map()
        configs, self.config_errors = load_model_configs(self.settings.models_path, backends)
        instance_configs, instance_errors = self.instances.configs(self.settings.models_path, backends)
        self.config_errors += instance_errors
        for config in instance_configs:
            if config.name in configs:
                self.config_errors.append(
                    ConfigError(
                        config.source or config.name,
                        "name",
                        f"'{config.name}' is also defined by {configs[config.name].source}",
                    )
                )
            else:
                configs[config.name] = config
        for error in self.config_errors:
            log.warning("model config: %s", error)
        models: dict[str, ManagedModel] = {}
        for name, config in configs.items():
            current = self.models.get(name)
            if current is not None and _same_worker(current.config, config):
                current.config = config
                models[name] = current
            else:
                models[name] = ManagedModel(
                    config,
                    self.registry.backends[config.backend],
                    self.settings.queue_size,
                    self.metrics.rejected.labels("queue_full").inc,
                )
        dropped = [model for name, model in self.models.items() if models.get(name) is not model]
        self.models = models
        self.ready = True
        for model in dropped:
            if model.worker is not None:
                self._spawn(self._stop(model, "its config changed or was removed"))

    async def start(self) -> None:
        """Load the configs and start the idle watchdog; call once the event loop runs."""
        self.reload()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._unload_idle())

    def get(self, name: str) -> ManagedModel:
        """The model ``name``; 503 when its config is invalid (the error names file and field), else 404."""
        model = self.models.get(name)
        if model is not None:
            return model
        error = next((e for e in self.config_errors if e.model == name), None)
        if error is None:
            raise ModelNotFound(name)
        authorize_model(name)
        raise ModelUnavailable(
            f"Model '{name}' cannot be served, its config is invalid: {error}", code="model_config_invalid"
        )

    def _check(self, model: ManagedModel, request: Request) -> None:
        capability = capability_of(request)
        authorize_model(model.name)
        if not model.supports(capability):
            raise NotSupported(
                f"Model '{model.name}' (backend '{model.config.backend}') does not support "
                f"{capability.value}",
                param="model",
            )
        if model.config.disabled:
            raise ModelUnavailable(f"Model '{model.name}' is disabled", code="model_disabled")

    # --- starting and stopping --------------------------------------------------------------------

    async def ensure_running(
        self, model: ManagedModel, *, deadline: float | None = None, on_demand: bool = True
    ) -> WorkerClient:
        """The model's live worker, started and loaded if needed (making room under the running cap)."""
        if model.running:
            assert model.worker is not None
            return model.worker
        if on_demand and model.failure is not None:
            raise ModelUnavailable(model.failure.message, code=model.failure.code)
        if on_demand and model.failed:
            raise ModelUnavailable(
                f"Model '{model.name}' failed after {model.restarts} restarts ({model.last_error}); "
                f"start it again with POST /api/v1/instances/{model.name}/start",
                code="model_failed",
            )
        if on_demand and not model.config.on_demand_start:
            raise ModelUnavailable(
                f"Model '{model.name}' is not running and its on-demand start is off; "
                f"start it with POST /api/v1/instances/{model.name}/start",
                code="model_not_running",
            )
        loop = asyncio.get_running_loop()
        deadline = deadline if deadline is not None else loop.time() + self.settings.busy_timeout
        async with model.start_lock:
            if model.running:
                assert model.worker is not None
                return model.worker
            await self._make_room(model, deadline)
            worker = WorkerClient(model.config, model.backend.plugin, model.log)
            model.log(f"[kernai] starting worker for '{model.name}' (backend {model.config.backend})")
            try:
                model.load_seconds = await worker.start(self.settings.load_timeout)
            except WorkerCrashed as exc:
                if not exc.fatal:
                    model.last_error = exc.message
                    model.log(f"[kernai] {exc.message}")
                    raise
                self.metrics.crashes.labels(model.name).inc()
                self._fail(model, exc)
                raise
            except ModelUnavailable as exc:
                model.last_error = exc.message
                model.log(f"[kernai] {exc.message}")
                raise
            finally:
                model.starting = False
                self._changed()
            model.worker = worker
            model.process = _cpu_watched(worker.pid)
            model.last_used = time.monotonic()
            model.last_error = None
            model.failed = False
            model.failure = None
            self.metrics.load_time.labels(model.name).observe(model.load_seconds)
            self._spawn(self._watch(model, worker))
            log.info("model %s loaded in %.2f s (pid %s)", model.name, model.load_seconds, worker.pid)
            return worker

    async def _make_room(self, model: ManagedModel, deadline: float) -> None:
        """Reserve a place under ``max_running_models`` for ``model`` (sets ``model.starting``)."""
        cap = self.settings.max_running_models
        loop = asyncio.get_running_loop()
        while True:
            async with self._capacity_lock:
                others = [m for m in self.models.values() if m is not model and m.occupies_slot]
                if cap <= 0 or len(others) < cap:
                    model.starting = True
                    return
                if not self.settings.lru_eviction:
                    raise Conflict(
                        f"Maximum number of running models ({cap}) reached; stop one first",
                        code="max_running_models",
                    )
                if all(m.config.pinned for m in others):
                    raise ModelUnavailable(
                        f"All {cap} running models are pinned; '{model.name}' cannot start "
                        f"until one is unpinned or stopped",
                        code="capacity_pinned",
                    )
                # A model still loading or restarting cannot be stopped yet: wait for it like for a busy one.
                candidates = sorted(
                    (m for m in others if m.running and not m.config.pinned), key=lambda m: m.last_used
                )
                idle = [m for m in candidates if m.admission.idle]
                if idle:
                    await self._stop(
                        idle[0],
                        f"evicted (least recently used) to make room for '{model.name}'",
                        reason="lru",
                    )
                    continue
                if loop.time() >= deadline:
                    if self.settings.force_eviction and candidates:
                        await self._stop(
                            candidates[0],
                            f"force-evicted while busy to make room for '{model.name}'",
                            reason="forced",
                            force=True,
                        )
                        continue
                    self.metrics.rejected.labels("capacity").inc()
                    raise ModelUnavailable(
                        f"All {cap} running models are busy; '{model.name}' could not start within "
                        f"{self.settings.busy_timeout:g} s",
                        retry_after=max(1, round(self.settings.busy_timeout)),
                        code="capacity_busy",
                    )
                changed = self._capacity_changed
            try:
                await asyncio.wait_for(changed.wait(), max(deadline - loop.time(), 0))
            except TimeoutError:
                pass

    def _changed(self) -> None:
        """Wake requests waiting for room under the running cap."""
        self._capacity_changed.set()
        self._capacity_changed = asyncio.Event()

    async def _stop(
        self, model: ManagedModel, why: str, *, reason: str = "stopped", force: bool = False
    ) -> bool:
        async with model.start_lock:
            worker = model.worker
            if worker is None:
                return False
            model.stopping = True
            try:
                await (worker.kill() if force else worker.stop())
            finally:
                model.stopping = False
                if model.worker is worker:
                    model.worker = None
                self._changed()
        model.log(f"[kernai] worker for '{model.name}' stopped: {why}")
        log.info("model %s stopped: %s", model.name, why)
        if reason != "stopped":
            self.metrics.evictions.labels(model.name, reason).inc()
        return True

    async def _watch(self, model: ManagedModel, worker: WorkerClient) -> None:
        await worker.exited.wait()
        if model.worker is worker:
            model.worker = None
        self._changed()
        if worker.closing:
            return
        returncode = worker.process.returncode if worker.process else None
        model.last_error = f"worker exited unexpectedly (return code {returncode})"
        model.log(f"[kernai] {model.last_error}")
        log.warning("model %s: %s", model.name, model.last_error)
        self.metrics.crashes.labels(model.name).inc()
        if worker.crash is not None and worker.crash.fatal:
            self._fail(model, worker.crash)
            return
        await self._auto_restart(model)

    def _fail(self, model: ManagedModel, crash: WorkerCrashed) -> None:
        """A crash that a restart would only repeat: the model stays ``error`` until started again."""
        model.failed = True
        model.failure = crash
        model.last_error = crash.message
        model.log(f"[kernai] model failed: {crash.message}")
        log.error("model %s: %s", model.name, crash.message)

    async def _auto_restart(self, model: ManagedModel) -> None:
        while model.config.auto_restart and not model.config.disabled:
            if model.restarts >= model.config.max_restarts:
                break
            model.restarts += 1
            model.restarting = True
            model.log(
                f"[kernai] restarting in {model.config.restart_delay:g} s "
                f"(attempt {model.restarts} of {model.config.max_restarts})"
            )
            self.metrics.restarts.labels(model.name).inc()
            try:
                await asyncio.sleep(model.config.restart_delay)
                if self.models.get(model.name) is not model:
                    return
                await self.ensure_running(model, on_demand=False)
                return
            except KernaiError as exc:
                model.last_error = exc.message
            finally:
                model.restarting = False
                self._changed()
        model.failed = True
        model.log(f"[kernai] model failed: {model.last_error}")

    async def _unload_idle(self) -> None:
        while True:
            await asyncio.sleep(self.settings.idle_check_interval)
            now = time.monotonic()
            for model in list(self.models.values()):
                timeout = model.config.idle_timeout
                timeout = self.settings.idle_timeout if timeout is None else timeout
                if (
                    timeout
                    and timeout > 0
                    and model.running
                    and model.admission.idle
                    and not model.config.pinned
                    and now - model.last_used >= timeout
                ):
                    try:
                        await self._stop(model, f"idle for {timeout:g} s", reason="idle")
                    except Exception:  # one model failing to stop must not end the watchdog
                        log.exception("model %s: idle unload failed", model.name)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- serving ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def _serving(self, model: ManagedModel) -> AsyncIterator[WorkerClient]:
        deadline = asyncio.get_running_loop().time() + self.settings.busy_timeout
        try:
            async with model.admission.slot():
                begun = time.perf_counter()
                try:
                    yield await self.ensure_running(model, deadline=deadline)
                    model.restarts = 0
                finally:
                    model.last_used = time.monotonic()
                    model.admission.record(time.perf_counter() - begun)
        finally:
            self._changed()

    def _record(
        self,
        model: ManagedModel,
        request: Request,
        begun: float,
        usage: Any,
        error: BaseException | None,
        first_chunk: float | None = None,
    ) -> None:
        seconds = time.perf_counter() - begun
        capability = capability_of(request).value
        self.metrics.inference.labels(model.name, capability).observe(seconds)
        if usage is not None:
            self.metrics.prompt_tokens.labels(model.name).inc(usage.prompt_tokens)
            self.metrics.completion_tokens.labels(model.name).inc(usage.completion_tokens)
        trace: dict[str, Any] = {
            "time": time.time(),
            "model": model.name,
            "backend": model.config.backend,
            "capability": capability,
            "stream": first_chunk is not None or bool(getattr(request, "stream", False)),
            "duration_ms": round(seconds * 1000, 2),
            "prompt_tokens": usage.prompt_tokens if usage is not None else None,
            "completion_tokens": usage.completion_tokens if usage is not None else None,
            "error": (getattr(error, "message", None) or repr(error)) if error is not None else None,
        }
        if first_chunk is not None:
            trace["time_to_first_token_ms"] = round((first_chunk - begun) * 1000, 2)
        self.backend_traces.add(trace)

    async def predict(self, name: str, request: Request) -> Result:
        """Serve a non-streaming request."""
        model = self.get(name)
        self._check(model, request)
        async with self._serving(model) as worker:
            begun, error, result = time.perf_counter(), None, None
            try:
                result = await worker.predict(request)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._record(model, request, begun, getattr(result, "usage", None), error)

    async def stream(self, name: str, request: Request) -> AsyncGenerator[Chunk, None]:
        """Serve a streaming request; closing the iterator early cancels it in the worker."""
        model = self.get(name)
        self._check(model, request)
        async with self._serving(model) as worker:
            begun, error, usage, first = time.perf_counter(), None, None, None
            try:
                async for chunk in worker.stream(request):
                    if first is None:
                        first = time.perf_counter()
                        self.metrics.time_to_first_token.labels(model.name).observe(first - begun)
                    usage = getattr(chunk, "usage", None) or usage
                    yield chunk
            except BaseException as exc:
                error = exc if not isinstance(exc, GeneratorExit) else None
                raise
            finally:
                self._record(model, request, begun, usage, error, first or begun)

    # --- management -------------------------------------------------------------------------------

    async def start_model(self, name: str) -> ManagedModel:
        """Start a model now (llamactl's ``start``); clears a ``failed`` state."""
        model = self.get(name)
        if model.config.disabled:
            raise ModelUnavailable(f"Model '{name}' is disabled", code="model_disabled")
        model.clear_failure()
        await self.ensure_running(model, on_demand=False)
        return model

    async def restart_model(self, name: str) -> ManagedModel:
        await self.unload(name)
        return await self.start_model(name)

    async def set_flag(self, name: str, flag: str, value: bool) -> ManagedModel:
        """Persist ``disabled`` or ``pinned`` in the model's YAML file or instance row; a disabled model
        stops."""
        model = self.get(name)
        update_config_source(model.config, self.instances, {flag: value})
        self.reload()
        model = self.get(name)
        if flag == "disabled" and value:
            await self._stop(model, "disabled")
        if flag == "disabled" and not value:
            model.clear_failure()
        return model

    async def unload(self, name: str) -> bool:
        """Stop the model's worker; ``False`` when it was not running."""
        return await self._stop(self.get(name), "unloaded")

    async def shutdown(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await asyncio.gather(
            *(self._stop(m, "server shutting down") for m in self.models.values() if m.worker is not None)
        )
        for task in list(self._tasks):
            task.cancel()

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
        worker, process = model.worker, model.process
        if worker is not None and worker.alive and process is not None and process.pid == worker.pid:
            try:
                with process.oneshot():
                    memory = process.memory_info()
                    facts.update(
                        pid=process.pid,
                        uptime_seconds=round(time.time() - process.create_time(), 3),
                        cpu_percent=process.cpu_percent(interval=None),
                        memory_info={"rss": memory.rss, "vms": memory.vms},
                    )
                facts["status"] = await worker.status()
            except (psutil.NoSuchProcess, ModelUnavailable, TimeoutError):
                pass
        return facts


def _cpu_watched(pid: int | None) -> psutil.Process | None:
    """The process ``pid`` with its CPU counter started (psutil's first ``cpu_percent`` reading is 0)."""
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        process.cpu_percent(interval=None)
        return process
    except psutil.NoSuchProcess:
        return None


def _same_worker(old: ModelConfig, new: ModelConfig) -> bool:
    """Whether ``new`` differs from ``old`` only in keys a running worker does not depend on."""
    return msgspec.structs.replace(old, **{key: getattr(new, key) for key in LIVE_FIELDS}) == new
