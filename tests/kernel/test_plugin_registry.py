"""Plugin registration: a hook implementation that no spec names is an error for that plugin, not silence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from kernai import hookimpl
from kernai.plugins import load_plugin, new_plugin_manager, register_checked
from kernai.testing import KernaiServer, install_plugin, on_pythonpath

TYPO = '''
"""A backend whose author misspelled ``predict``."""
from kernai import Backend, hookimpl
from kernai.capabilities import Capability


@hookimpl
def register_backends(register):
    register(Backend(name="typo", capabilities=[Capability.COMPLETION], requires_model_file=False))


@hookimpl
def load(backend, config):
    return object()


@hookimpl
def predikt(backend, model, request):
    return None
'''


@pytest.fixture(scope="module")
def typo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that, on PYTHONPATH, installs the ``typo`` plugin (its module and its entry point)."""
    return install_plugin(tmp_path_factory.mktemp("typo"), "typo", TYPO)


def typo_env(typo_path: Path) -> dict[str, str]:
    return {"PYTHONPATH": on_pythonpath(typo_path), "KERNAI_LOAD_PLUGINS": "typo,reference"}


class Misspelled:
    @hookimpl
    def predikt(self, backend: str, model: Any, request: Any) -> None:
        return None


class WrongArgument:
    @hookimpl
    def predict(self, backend: str, handle: Any, request: Any) -> None:
        return None


class Fine:
    @hookimpl
    def status(self, model: Any) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("plugin", "message"),
    [(Misspelled(), "unknown hook 'predikt'"), (WrongArgument(), r"Argument\(s\) {'handle'}")],
)
def test_a_hook_no_spec_names_is_refused_and_leaves_the_plugin_unregistered(
    plugin: object, message: str
) -> None:
    manager = new_plugin_manager()
    with pytest.raises(pluggy.PluginValidationError, match=message):
        register_checked(manager, plugin, "bad")
    assert manager.get_plugin("bad") is None
    register_checked(manager, Fine(), "fine")  # the manager stays usable: the bad plugin left nothing
    assert manager.get_plugin("fine") is not None


def test_kernai_plugins_reports_the_misspelled_hook_as_a_load_error(typo_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kernai", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **typo_env(typo_path)},
    )
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [p["name"] for p in listing["plugins"]] == ["reference"]
    assert "unknown hook 'predikt'" in listing["errors"]["typo"]


@pytest.fixture()
def typo_on_sys_path(typo_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(typo_path))
    try:
        yield
    finally:
        sys.modules.pop("kernai_typo", None)


@pytest.mark.usefixtures("typo_on_sys_path")
def test_a_worker_refuses_to_load_a_plugin_with_a_misspelled_hook() -> None:
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'predikt'"):
        load_plugin("typo")


@pytest.mark.slow
def test_the_server_starts_without_the_plugin_and_logs_and_reports_why(
    typo_path: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    with KernaiServer(models, tmp_path / "data", env=typo_env(typo_path)) as server:
        with server.client() as client:
            system = client.get("/system").json()
        assert [b["name"] for b in system["backends"]] == ["reference"]
        assert "unknown hook 'predikt'" in system["plugin_errors"]["typo"]
        assert "plugin typo not loaded" in server.log() and "predikt" in server.log()
