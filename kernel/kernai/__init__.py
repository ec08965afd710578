"""kernai: a local AI inference server on a plugin microkernel.

Backends are pluggy plugins found through the ``kernai`` entry-point group. A plugin module uses
:data:`hookimpl` to implement the hooks in :mod:`kernai.hookspecs`.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

from kernai.backends import Backend, BackendOption, SelfTest

try:
    __version__ = version("kernai")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

hookimpl = pluggy.HookimplMarker("kernai")
"""Marker for a plugin's hook implementations."""

__all__ = ["Backend", "BackendOption", "SelfTest", "hookimpl", "__version__"]
