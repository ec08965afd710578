"""``kernai.Model`` and ``model_hooks``: the lifecycle hooks a plugin gets from one class, in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest

from kernai import Model, model_hooks
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.plugins import load_plugin, new_plugin_manager, register_checked


class Counter(Model):
    def __init__(self, config: ModelConfig) -> None:
        self.greeting = config.options["greeting"]
        self.served = 0
        self.closed = False

    def predict(self, request: cap.Request) -> cap.Result | None:
        if not isinstance(request, cap.TokenizeRequest):
            return None
        self.served += 1
        return cap.TokenizeResult([len(self.greeting)])

    def status(self) -> dict[str, Any]:
        return {"served": self.served}

    def close(self) -> None:
        self.closed = True


class Silent(Model):
    def __init__(self, config: ModelConfig) -> None:
        pass

    def predict(self, request: cap.Request) -> None:
        return None


def plugin_manager(model: type[Model] | str) -> pluggy.PluginManager:
    """A manager holding one module-shaped plugin whose lifecycle hooks come from ``model_hooks``."""
    plugin = ModuleType("fake_plugin")
    plugin.load, plugin.predict, plugin.status, plugin.shutdown = model_hooks(model)  # type: ignore[attr-defined]
    manager = new_plugin_manager()
    register_checked(manager, plugin, "fake")
    return manager


def config(**options: Any) -> ModelConfig:
    return ModelConfig(name="m", backend="fake", options=options)


def test_the_hooks_build_the_model_and_call_its_methods() -> None:
    hook = plugin_manager(Counter).hook
    model = hook.load(backend="fake", config=config(greeting="hello"))
    assert isinstance(model, Counter)
    result = hook.predict(backend="fake", model=model, request=cap.TokenizeRequest(content="x"))
    assert result == cap.TokenizeResult([5])
    assert hook.predict(backend="fake", model=model, request=cap.DetokenizeRequest(tokens=[1])) is None
    assert hook.status(backend="fake", model=model) == {"served": 1}
    assert hook.shutdown(backend="fake", model=model) is True and model.closed


def test_status_and_close_have_defaults() -> None:
    hook = plugin_manager(Silent).hook
    model = hook.load(backend="fake", config=config())
    assert hook.status(backend="fake", model=model) == {}
    assert hook.shutdown(backend="fake", model=model) is True


def test_each_hook_registers_under_its_spec_name_whatever_it_is_assigned_to() -> None:
    plugin = ModuleType("fake_plugin")
    plugin.first, plugin.second, plugin.third, plugin.fourth = model_hooks(Counter)  # type: ignore[attr-defined]
    manager = new_plugin_manager()
    register_checked(manager, plugin, "fake")
    hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
    assert hooks == ["load", "predict", "shutdown", "status"]


@pytest.fixture()
def engine_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module ``kernai_fake_engine`` with a Model subclass and a class that is not one."""
    (tmp_path / "kernai_fake_engine.py").write_text(
        "from kernai import Model\n\n"
        "class Engine(Model):\n"
        "    def __init__(self, config):\n"
        "        pass\n\n"
        "    def predict(self, request):\n"
        "        return None\n\n"
        "class NotAModel:\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield "kernai_fake_engine"
    finally:
        sys.modules.pop("kernai_fake_engine", None)


def test_a_class_named_by_string_is_imported_only_in_load(engine_module: str) -> None:
    hook = plugin_manager(f"{engine_module}:Engine").hook
    assert engine_module not in sys.modules  # the server process, which never loads, never imports it
    model = hook.load(backend="fake", config=config())
    assert type(model).__name__ == "Engine" and engine_module in sys.modules


def test_a_string_that_names_no_model_class_fails_the_load(engine_module: str) -> None:
    hook = plugin_manager(f"{engine_module}:NotAModel").hook
    with pytest.raises(TypeError, match="is not a subclass of kernai.Model"):
        hook.load(backend="fake", config=config())


def test_a_worker_holds_only_the_plugin_that_registered_the_backend() -> None:
    """Why no plugin checks ``backend``: the lifecycle hooks of no other plugin are there to be asked."""
    manager = load_plugin("reference")
    assert [name for name, _ in manager.list_name_plugin()] == ["reference"]
