"""The manager's decisions, as pure functions of a model's facts: room under the running cap, a start on
demand, what follows a crash, which idle models to unload. The supervisor acts on them; unit tests check
them without processes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Literal, Protocol, TypeVar

from kernai.config import ModelConfig
from kernai.errors import Conflict, KernaiError, ModelUnavailable
from kernai.manager.model import ManagedModel
from kernai.settings import Settings
from kernai.worker.client import WorkerCrashed


class Candidate(Protocol):
    """What the decisions read of a model (a :class:`kernai.manager.model.ManagedModel`)."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> ModelConfig: ...
    @property
    def running(self) -> bool: ...
    @property
    def idle(self) -> bool: ...
    @property
    def occupies_slot(self) -> bool: ...
    @property
    def last_used(self) -> float: ...


M = TypeVar("M", bound=Candidate)


# --- room under max_running_models --------------------------------------------------------------------


@dataclass(frozen=True)
class Admit:
    """There is room: start the model."""


@dataclass(frozen=True)
class Evict(Generic[M]):
    """Stop ``model`` (``lru``: the least recently used idle one; ``forced``: busy, after the wait), then
    decide again."""

    model: M
    reason: Literal["lru", "forced"]


@dataclass(frozen=True)
class Wait:
    """Every model that could make room is busy, loading or restarting: wait for one to change."""


@dataclass(frozen=True)
class Refuse:
    """The model cannot start now; ``error`` is the answer."""

    error: KernaiError


Room = Admit | Evict[M] | Wait | Refuse


def room_for(model: M, models: Iterable[M], settings: Settings, *, timed_out: bool) -> Room[M]:
    """How ``model`` gets a place under ``max_running_models`` among ``models``; ``timed_out``: the
    request has waited ``busy_timeout`` already. Pinned models are never evicted."""
    cap = settings.max_running_models
    others = [m for m in models if m is not model and m.occupies_slot]
    if cap <= 0 or len(others) < cap:
        return Admit()
    if not settings.lru_eviction:
        return Refuse(
            Conflict(
                f"Maximum number of running models ({cap}) reached; stop one first", code="max_running_models"
            )
        )
    if all(m.config.pinned for m in others):
        return Refuse(
            ModelUnavailable(
                f"All {cap} running models are pinned; '{model.name}' cannot start "
                f"until one is unpinned or stopped",
                code="capacity_pinned",
            )
        )
    # A model still loading or restarting cannot be stopped yet: wait for it like for a busy one.
    candidates = sorted((m for m in others if m.running and not m.config.pinned), key=lambda m: m.last_used)
    idle = next((m for m in candidates if m.idle), None)
    if idle is not None:
        return Evict(idle, "lru")
    if not timed_out:
        return Wait()
    if settings.force_eviction and candidates:
        return Evict(candidates[0], "forced")
    return Refuse(
        ModelUnavailable(
            f"All {cap} running models are busy; '{model.name}' could not start within "
            f"{settings.busy_timeout:g} s",
            retry_after=max(1, round(settings.busy_timeout)),
            code="capacity_busy",
        )
    )


# --- starting on demand -------------------------------------------------------------------------------


def on_demand_refusal(model: ManagedModel) -> ModelUnavailable | None:
    """Why a request may not start ``model`` now (a fatal crash, its restarts used up, on-demand start
    off); ``None`` when it may."""
    if model.failure is not None:
        return ModelUnavailable(model.failure.message, code=model.failure.code)
    if model.failed:
        return ModelUnavailable(
            f"Model '{model.name}' failed after {model.restarts} restarts ({model.last_error}); "
            f"start it again with POST /api/v1/instances/{model.name}/start",
            code="model_failed",
        )
    if not model.config.on_demand_start:
        return ModelUnavailable(
            f"Model '{model.name}' is not running and its on-demand start is off; "
            f"start it with POST /api/v1/instances/{model.name}/start",
            code="model_not_running",
        )
    return None


# --- crashes ------------------------------------------------------------------------------------------


class AfterCrash(StrEnum):
    FAIL = "fail"
    """A fatal crash (see :attr:`WorkerCrashed.fatal`): a restart would crash again."""
    RESTART = "restart"
    GIVE_UP = "give_up"
    """Auto restart is off, the model is disabled or its restarts are used up: it stays ``failed``."""


def may_restart(config: ModelConfig, restarts: int) -> bool:
    """Whether a model that stopped on its own gets another restart after ``restarts`` in a row."""
    return config.auto_restart and not config.disabled and restarts < config.max_restarts


def after_crash(crash: WorkerCrashed | None, config: ModelConfig, restarts: int) -> AfterCrash:
    """What follows a worker's exit on its own; ``crash`` is why it ended, when the client knows."""
    if crash is not None and crash.fatal:
        return AfterCrash.FAIL
    return AfterCrash.RESTART if may_restart(config, restarts) else AfterCrash.GIVE_UP


# --- idle unload --------------------------------------------------------------------------------------


def idle_expired(models: Iterable[M], now: float, default_timeout: float) -> list[tuple[M, float]]:
    """The running, unpinned models without a request for their ``idle_timeout`` (else
    ``default_timeout``; 0 = never) at ``now``, each with that timeout."""
    expired = []
    for model in models:
        timeout = model.config.idle_timeout
        timeout = default_timeout if timeout is None else timeout
        if (
            timeout > 0
            and model.running
            and model.idle
            and not model.config.pinned
            and now - model.last_used >= timeout
        ):
            expired.append((model, timeout))
    return expired
