"""The workers of the catalog's models: start one on demand under the running cap, stop it, restart it
after a crash, unload it when idle, and report on its process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import psutil

from kernai.errors import KernaiError, ModelUnavailable
from kernai.manager.catalog import Catalog
from kernai.manager.decisions import (
    Admit,
    AfterCrash,
    Evict,
    Refuse,
    after_crash,
    idle_expired,
    may_restart,
    on_demand_refusal,
    room_for,
)
from kernai.manager.model import ManagedModel
from kernai.observability.metrics import Metrics
from kernai.settings import Settings
from kernai.worker.client import WorkerClient, WorkerCrashed

log = logging.getLogger(__name__)

EVICTED = {"lru": "evicted (least recently used)", "forced": "force-evicted while busy"}


class Supervisor:
    """Starts, stops and restarts one worker process per model of ``catalog``."""

    def __init__(self, settings: Settings, catalog: Catalog, metrics: Metrics) -> None:
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics
        self._capacity_changed = asyncio.Event()
        self._capacity_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the idle watchdog; call once the event loop runs."""
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._unload_idle())

    async def shutdown(self) -> None:
        """Stop the watchdog, every worker and the background tasks."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await asyncio.gather(
            *(
                self.stop(m, "server shutting down")
                for m in self.catalog.models.values()
                if m.worker is not None
            )
        )
        for task in list(self._tasks):
            task.cancel()

    # --- starting and stopping --------------------------------------------------------------------

    async def ensure_running(
        self, model: ManagedModel, *, deadline: float | None = None, on_demand: bool = True
    ) -> WorkerClient:
        """The model's live worker, started and loaded if needed (making room under the running cap)."""
        if model.running:
            assert model.worker is not None
            return model.worker
        if on_demand and (refusal := on_demand_refusal(model)) is not None:
            raise refusal
        loop = asyncio.get_running_loop()
        deadline = deadline if deadline is not None else loop.time() + self.settings.busy_timeout
        async with model.start_lock:
            if model.running:
                assert model.worker is not None
                return model.worker
            await self._make_room(model, deadline)
            worker = WorkerClient(model.config, model.backend.plugin, model.log, model.backend.python)
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
                self.changed()
            model.worker = worker
            model.process = _cpu_watched(worker.pid)
            model.last_used = time.monotonic()
            model.last_error = None
            model.failed = False
            model.failure = None
            self.metrics.load_time.labels(model.name).observe(model.load_seconds)
            self.spawn(self._watch(model, worker))
            log.info("model %s loaded in %.2f s (pid %s)", model.name, model.load_seconds, worker.pid)
            return worker

    async def _make_room(self, model: ManagedModel, deadline: float) -> None:
        """Reserve a place under ``max_running_models`` for ``model`` (sets ``model.starting``)."""
        loop = asyncio.get_running_loop()
        while True:
            async with self._capacity_lock:
                room = room_for(
                    model, self.catalog.models.values(), self.settings, timed_out=loop.time() >= deadline
                )
                if isinstance(room, Admit):
                    model.starting = True
                    return
                if isinstance(room, Refuse):
                    if room.error.code == "capacity_busy":
                        self.metrics.rejected.labels("capacity").inc()
                    raise room.error
                if isinstance(room, Evict):
                    await self.stop(
                        room.model,
                        f"{EVICTED[room.reason]} to make room for '{model.name}'",
                        reason=room.reason,
                        force=room.reason == "forced",
                    )
                    continue
                changed = self._capacity_changed
            try:
                await asyncio.wait_for(changed.wait(), max(deadline - loop.time(), 0))
            except TimeoutError:
                pass

    def changed(self) -> None:
        """Wake requests waiting for room under the running cap."""
        self._capacity_changed.set()
        self._capacity_changed = asyncio.Event()

    async def stop(
        self, model: ManagedModel, why: str, *, reason: str = "stopped", force: bool = False
    ) -> bool:
        """Stop the model's worker (``force``: kill it); ``False`` when none ran. A ``reason`` other than
        ``stopped`` counts as an eviction in the metrics."""
        async with model.start_lock:
            worker = model.worker
            if worker is None:
                return False
            model.stopping = True
            try:
                await (worker.kill(why) if force else worker.stop(why))
            finally:
                model.stopping = False
                if model.worker is worker:
                    model.worker = None
                self.changed()
        model.log(f"[kernai] worker for '{model.name}' stopped: {why}")
        log.info("model %s stopped: %s", model.name, why)
        if reason != "stopped":
            self.metrics.evictions.labels(model.name, reason).inc()
        return True

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` in the background until it ends or the supervisor shuts down."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- crashes ----------------------------------------------------------------------------------

    async def _watch(self, model: ManagedModel, worker: WorkerClient) -> None:
        await worker.exited.wait()
        if model.worker is worker:
            model.worker = None
        self.changed()
        if worker.closing is not None:
            return
        returncode = worker.process.returncode if worker.process else None
        model.last_error = f"worker exited unexpectedly (return code {returncode})"
        model.log(f"[kernai] {model.last_error}")
        log.warning("model %s: %s", model.name, model.last_error)
        self.metrics.crashes.labels(model.name).inc()
        if after_crash(worker.crash, model.config, model.restarts) is AfterCrash.FAIL:
            assert worker.crash is not None
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
        while may_restart(model.config, model.restarts):
            model.restarts += 1
            model.restarting = True
            model.log(
                f"[kernai] restarting in {model.config.restart_delay:g} s "
                f"(attempt {model.restarts} of {model.config.max_restarts})"
            )
            self.metrics.restarts.labels(model.name).inc()
            try:
                await asyncio.sleep(model.config.restart_delay)
                if self.catalog.models.get(model.name) is not model:
                    return
                await self.ensure_running(model, on_demand=False)
                return
            except KernaiError as exc:
                model.last_error = exc.message
            finally:
                model.restarting = False
                self.changed()
        model.failed = True
        model.log(f"[kernai] model failed: {model.last_error}")

    # --- idle unload ------------------------------------------------------------------------------

    async def _unload_idle(self) -> None:
        while True:
            await asyncio.sleep(self.settings.idle_check_interval)
            expired = idle_expired(self.catalog.models.values(), time.monotonic(), self.settings.idle_timeout)
            for model, timeout in expired:
                try:
                    await self.stop(model, f"idle for {timeout:g} s", reason="idle")
                except Exception:  # one model failing to stop must not end the watchdog
                    log.exception("model %s: idle unload failed", model.name)

    # --- process facts ----------------------------------------------------------------------------

    async def process_facts(self, model: ManagedModel) -> dict[str, Any]:
        """The worker's pid, uptime, CPU, memory and backend status; empty when it is not running."""
        facts: dict[str, Any] = {}
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
