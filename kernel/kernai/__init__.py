"""kernai: a local AI inference server on a plugin microkernel.

Backends are pluggy plugins found through the ``kernai`` entry-point group. A plugin module uses
:data:`hookimpl` to implement the hooks in :mod:`kernai.hookspecs`, and :func:`model_hooks` to make
the lifecycle hooks from a :class:`Model` subclass.
"""

from importlib.metadata import PackageNotFoundError, version

from kernai.backends import Backend, BackendOption, SelfTest
from kernai.hookspecs import hookimpl
from kernai.model import Model, model_hooks

try:
    __version__ = version("kernai")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["Backend", "BackendOption", "Model", "SelfTest", "hookimpl", "model_hooks", "__version__"]
