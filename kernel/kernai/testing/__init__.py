"""Test helpers for kernai and for backend authors.

- :class:`~kernai.testing.server.KernaiServer`: run a real ``kernai serve`` on a free port.
- The ``kernai_server`` fixture (:mod:`kernai.testing.pytest_plugin`, a pytest plugin every suite
  gets): session-wide servers over models you describe (:func:`~kernai.testing.pytest_plugin.model_configs`).
- :class:`~kernai.testing.conformance.BackendConformance`: subclass it in your test suite to check
  that a backend honours the plugin contract.

The names are imported on first use: pytest loads the plugin module in every run, and the
conformance kit brings in the model manager, which a run of unit tests need not import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernai.testing.conformance import BackendConformance
    from kernai.testing.pytest_plugin import ServerFactory, model_configs, prepare_server, write_models
    from kernai.testing.server import KernaiServer, free_port
    from kernai.testing.tools import install_plugin, on_pythonpath, run_doctor

_MODULES = {
    "BackendConformance": "kernai.testing.conformance",
    "KernaiServer": "kernai.testing.server",
    "free_port": "kernai.testing.server",
    "ServerFactory": "kernai.testing.pytest_plugin",
    "model_configs": "kernai.testing.pytest_plugin",
    "prepare_server": "kernai.testing.pytest_plugin",
    "write_models": "kernai.testing.pytest_plugin",
    "install_plugin": "kernai.testing.tools",
    "on_pythonpath": "kernai.testing.tools",
    "run_doctor": "kernai.testing.tools",
}

__all__ = [
    "BackendConformance",
    "KernaiServer",
    "ServerFactory",
    "free_port",
    "install_plugin",
    "model_configs",
    "on_pythonpath",
    "prepare_server",
    "run_doctor",
    "write_models",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
