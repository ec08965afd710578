"""The model manager's decisions, in process and without worker processes: room under the running cap,
starting on demand, what follows a crash, idle unload, which config changes keep a worker, and that
building the manager does no I/O."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernai.backends import Backend
from kernai.capabilities import Capability
from kernai.config import ModelConfig
from kernai.instances import InstanceStore
from kernai.manager import ManagedModel, ModelManager
from kernai.manager.catalog import Catalog, same_worker
from kernai.manager.decisions import (
    Admit,
    AfterCrash,
    Evict,
    Refuse,
    Wait,
    after_crash,
    idle_expired,
    on_demand_refusal,
    room_for,
)
from kernai.plugins import PluginRegistry, RegisteredBackend
from kernai.settings import Settings
from kernai.store import open_database
from kernai.worker.client import WorkerCrashed


@dataclass
class Model:
    """A model's facts as the decisions read them (a running one unless told otherwise)."""

    config: ModelConfig
    last_used: float = 0.0
    running: bool = True
    idle: bool = True
    loading: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def occupies_slot(self) -> bool:
        return self.running or self.loading


def model(
    name: str,
    *,
    pinned: bool = False,
    idle_timeout: float | None = None,
    last_used: float = 0.0,
    running: bool = True,
    idle: bool = True,
    loading: bool = False,
) -> Model:
    config = ModelConfig(name=name, backend="reference", pinned=pinned, idle_timeout=idle_timeout)
    return Model(config, last_used, running, idle, loading)


def settings(**values: Any) -> Settings:
    return Settings(**{"max_running_models": 2, **values})


# --- room under max_running_models --------------------------------------------------------------------


def test_no_cap_or_a_free_place_admits() -> None:
    new, others = model("new"), [model("a", idle=False), model("b", idle=False)]
    assert room_for(new, [new, *others], settings(max_running_models=0), timed_out=False) == Admit()
    assert room_for(new, [new, others[0]], settings(), timed_out=False) == Admit()


def test_stopped_models_and_the_model_itself_take_no_place() -> None:
    new = model("new", running=False, loading=True)
    assert room_for(new, [new, model("a"), model("b", running=False)], settings(), timed_out=False) == Admit()


def test_at_the_cap_the_least_recently_used_idle_model_is_evicted() -> None:
    old_busy = model("old-busy", last_used=1, idle=False)
    old_idle, new_idle = model("old-idle", last_used=2), model("new-idle", last_used=3)
    new = model("new")
    room = room_for(new, [old_busy, new_idle, old_idle, new], settings(max_running_models=3), timed_out=False)
    assert room == Evict(old_idle, "lru")


def test_pinned_models_are_never_evicted() -> None:
    pinned, other = model("pinned", pinned=True, last_used=1), model("other", last_used=2)
    new = model("new")
    assert room_for(new, [pinned, other, new], settings(), timed_out=False) == Evict(other, "lru")


def test_all_places_pinned_refuses_at_once() -> None:
    new = model("new")
    room = room_for(new, [model("a", pinned=True), model("b", pinned=True)], settings(), timed_out=False)
    assert isinstance(room, Refuse)
    assert (room.error.status_code, room.error.code) == (503, "capacity_pinned")
    assert "'new'" in room.error.message


def test_without_lru_eviction_the_cap_is_a_409() -> None:
    room = room_for(model("new"), [model("a"), model("b")], settings(lru_eviction=False), timed_out=False)
    assert isinstance(room, Refuse)
    assert (room.error.status_code, room.error.code) == (409, "max_running_models")


def test_busy_or_loading_models_are_waited_for_until_the_deadline() -> None:
    busy, loading = model("busy", idle=False), model("loading", running=False, loading=True)
    assert room_for(model("new"), [busy, loading], settings(), timed_out=False) == Wait()
    room = room_for(model("new"), [busy, loading], settings(busy_timeout=2.4), timed_out=True)
    assert isinstance(room, Refuse)
    assert (room.error.status_code, room.error.code, room.error.retry_after) == (503, "capacity_busy", 2)


def test_force_eviction_stops_the_least_recently_used_busy_model_after_the_wait() -> None:
    older, newer = model("older", idle=False, last_used=1), model("newer", idle=False, last_used=2)
    forced = settings(force_eviction=True)
    assert room_for(model("new"), [newer, older], forced, timed_out=False) == Wait()
    assert room_for(model("new"), [newer, older], forced, timed_out=True) == Evict(older, "forced")


def test_force_eviction_cannot_stop_a_model_still_loading() -> None:
    loading = [model("a", running=False, loading=True), model("b", running=False, loading=True)]
    room = room_for(model("new"), loading, settings(force_eviction=True), timed_out=True)
    assert isinstance(room, Refuse) and room.error.code == "capacity_busy"


# --- starting on demand -------------------------------------------------------------------------------


def managed(**config: Any) -> ManagedModel:
    backend = RegisteredBackend(Backend(name="reference", capabilities=[Capability.CHAT]), "reference")
    return ManagedModel(ModelConfig(name="m", backend="reference", **config), backend, 4, lambda: None)


def test_a_fresh_model_may_start_on_demand() -> None:
    assert on_demand_refusal(managed()) is None


def test_a_fatal_crash_answers_every_later_request_with_its_message() -> None:
    model = managed()
    model.failure = WorkerCrashed("m", -signal.SIGILL, "reference")
    refusal = on_demand_refusal(model)
    assert refusal is not None and refusal.code == "illegal_instruction"
    assert refusal.message == model.failure.message


def test_a_failed_model_names_its_restarts_and_last_error() -> None:
    model = managed()
    model.failed, model.restarts, model.last_error = True, 3, "worker exited unexpectedly (return code 1)"
    refusal = on_demand_refusal(model)
    assert refusal is not None and (refusal.status_code, refusal.code) == (503, "model_failed")
    assert "after 3 restarts (worker exited unexpectedly (return code 1))" in refusal.message
    assert "POST /api/v1/instances/m/start" in refusal.message


def test_on_demand_start_off_asks_for_an_explicit_start() -> None:
    refusal = on_demand_refusal(managed(on_demand_start=False))
    assert refusal is not None and refusal.code == "model_not_running"


# --- crashes ------------------------------------------------------------------------------------------


def config(**values: Any) -> ModelConfig:
    return ModelConfig(name="m", backend="reference", **values)


@pytest.mark.parametrize(
    ("returncode", "loading"),
    [(-signal.SIGILL, False), (-signal.SIGILL, True), (-signal.SIGSEGV, True), (-signal.SIGBUS, True)],
)
def test_a_fatal_crash_fails_the_model_at_once(returncode: int, loading: bool) -> None:
    crash = WorkerCrashed("m", returncode, "reference", loading=loading)
    assert after_crash(crash, config(), restarts=0) is AfterCrash.FAIL


@pytest.mark.parametrize("crash", [None, WorkerCrashed("m", -signal.SIGSEGV), WorkerCrashed("m", 1)])
def test_other_crashes_restart_while_restarts_are_left(crash: WorkerCrashed | None) -> None:
    assert after_crash(crash, config(max_restarts=2), restarts=1) is AfterCrash.RESTART
    assert after_crash(crash, config(max_restarts=2), restarts=2) is AfterCrash.GIVE_UP


@pytest.mark.parametrize("values", [{"auto_restart": False}, {"disabled": True}, {"max_restarts": 0}])
def test_no_restart_when_auto_restart_is_off_disabled_or_none_allowed(values: dict[str, Any]) -> None:
    assert (
        after_crash(WorkerCrashed("m", -signal.SIGKILL), config(**values), restarts=0) is AfterCrash.GIVE_UP
    )


# --- idle unload --------------------------------------------------------------------------------------


def test_idle_models_past_their_timeout_are_unloaded() -> None:
    own = model("own", idle_timeout=5.0, last_used=90)
    default = model("default", last_used=90)
    recent = model("recent", idle_timeout=50.0, last_used=90)
    assert idle_expired([own, default, recent], now=100, default_timeout=10) == [(own, 5.0), (default, 10)]


def test_zero_pinned_busy_and_stopped_models_stay() -> None:
    models = [
        model("never", idle_timeout=0.0),
        model("server-never"),
        model("pinned", pinned=True, idle_timeout=1.0),
        model("busy", idle=False, idle_timeout=1.0),
        model("stopped", running=False, idle_timeout=1.0),
    ]
    assert idle_expired(models, now=100, default_timeout=0) == []


# --- the catalog --------------------------------------------------------------------------------------


def test_only_lifecycle_keys_change_without_a_new_worker() -> None:
    old = config(threads=2)
    assert same_worker(old, config(threads=2, pinned=True, idle_timeout=3.0, description="now pinned"))
    assert not same_worker(old, config(threads=4))


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    monkeypatch.setenv("KERNAI_LOAD_PLUGINS", "reference")
    return PluginRegistry()


def test_reload_keeps_a_model_whose_live_keys_changed_and_reports_errors(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "a.yaml").write_text("name: a\nbackend: reference\n")
    (models_dir / "b.yaml").write_text("name: b\nbackend: reference\n")
    (models_dir / "typo.yaml").write_text("name: typo\nbackend: reference\ncontext_sise: 10\n")
    instances = InstanceStore(open_database(tmp_path / "data"))
    catalog = Catalog(Settings(models_dir=str(models_dir)), registry, instances, lambda: None)
    assert catalog.reload() == [] and catalog.ready
    a, b = catalog.models["a"], catalog.models["b"]
    error = catalog.error_for("typo")
    assert error is not None and error.field == "context_sise"
    catalog.instances.put("b", {"backend": "reference"})
    (models_dir / "a.yaml").write_text("name: a\nbackend: reference\npinned: true\n")
    (models_dir / "b.yaml").write_text("name: b\nbackend: reference\nthreads: 3\n")
    assert catalog.reload() == []  # b's worker changes, but none runs
    assert catalog.models["a"] is a and a.config.pinned
    assert catalog.models["b"] is not b and catalog.models["b"].config.threads == 3
    assert [(e.file, e.field) for e in catalog.errors[1:]] == [("instance:b", "name")]


def test_building_the_manager_does_no_io(tmp_path: Path, registry: PluginRegistry) -> None:
    data = tmp_path / "data"
    manager = ModelManager(Settings(data_dir=str(data)), registry, open_database(tmp_path / "elsewhere"))
    assert not data.exists() and not manager.ready and manager.models == {}
    assert manager.registry is registry
    ModelManager.open(Settings(data_dir=str(data)), registry)
    assert (data / "kernai.db").is_file()
