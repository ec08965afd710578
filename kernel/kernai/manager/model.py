"""One configured model: its config, backend, admission queue, worker and what happened to it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from enum import StrEnum

import psutil

from kernai.admission import Admission
from kernai.capabilities import Capability
from kernai.config import ModelConfig
from kernai.plugins import RegisteredBackend
from kernai.worker.client import WorkerClient, WorkerCrashed

LOG_LINES = 2000
ERROR_TAIL = 20


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
    def idle(self) -> bool:
        """No request running or waiting."""
        return self.admission.idle

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
